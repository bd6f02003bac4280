#!/usr/bin/env python3
"""Rebuilds the seed corpora fuzz/corpus/<target>/ from the repository's test data: the files of
tests/data, config/default.json, and the string literals of the unit tests (C++ raw strings and
plain literals). Each target's input layout (its leading mode / split bytes) is documented at the
top of fuzz/<target>.cpp. Run from anywhere; it replaces the seed files it writes (seed-*)."""

import hashlib
import pathlib
import re

root = pathlib.Path(__file__).resolve().parent.parent
corpus = root / "fuzz" / "corpus"

RAW = re.compile(r'R"([^()\\ ]{0,16})\((.*?)\)\1"', re.S)
PLAIN = re.compile(r'"((?:[^"\\\n]|\\.)*)"')
ESC = {"n": "\n", "r": "\r", "t": "\t", "0": "\0", '"': '"', "\\": "\\", "'": "'"}


def unescape(s):
    out, i = [], 0
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s):
            n = s[i + 1]
            if n == "x":
                m = re.match(r"[0-9a-fA-F]{1,2}", s[i + 2:])
                if m:
                    out.append(chr(int(m.group(0), 16)))
                    i += 2 + len(m.group(0))
                    continue
            out.append(ESC.get(n, n))
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


def literals(path):
    text = path.read_text()
    found = [m.group(2) for m in RAW.finditer(text)]
    stripped = RAW.sub('""', text)
    # Adjacent plain literals ("a" "b") are one string in C++: join those on consecutive lines.
    joined = re.sub(r'"\s*\n\s*"', "", stripped)
    found += [unescape(m.group(1)) for m in PLAIN.finditer(joined)]
    return found


def write(target, data):
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogateescape")
    d = corpus / target
    d.mkdir(parents=True, exist_ok=True)
    (d / ("seed-" + hashlib.sha1(data).hexdigest()[:16])).write_bytes(data)


def tests(*globs):
    for g in globs:
        for p in sorted(root.glob(g)):
            yield from literals(p)


def main():
    for d in corpus.glob("*/seed-*"):
        d.unlink()
    # The shipped providers in config order (the entries of "providers", indented 4 spaces).
    shipped = (root / "config/default.json").read_text()
    section = shipped[shipped.index('\n  "providers"'):shipped.index('\n  "tiers"')]
    providers = re.findall(r'^    "([a-z0-9_-]+)": \{', section, re.M)

    # http_request: [mode][split] wire; mode bit 0 = response, bit 1 = EOF at the end, bit 2 =
    # header count and target length limits.
    wires = [s for s in tests("tests/unit/http/*_test.cpp") if "HTTP/1." in s]
    routes = [m for m in re.findall(r'"(/[^"\s]*)"', (root / "tests/unit/app/routes_test.cpp")
                                    .read_text())]
    for path in sorted(set(routes)):
        for verb in ("GET", "POST", "DELETE", "HEAD", "PUT"):
            wires.append(f"{verb} {path} HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer ib_x\r\n"
                         "Content-Length: 2\r\n\r\n{}")
    for w in wires:
        if w.startswith("HTTP/"):
            write("http_request", b"\x01\xff" + w.encode("latin-1", "replace"))
            write("http_request", b"\x03\x05" + w.encode("latin-1", "replace"))
        else:
            write("http_request", b"\x00\xff" + w.encode("latin-1", "replace"))
            write("http_request", b"\x02\x05" + w.encode("latin-1", "replace"))
            write("http_request", b"\x04\xff" + w.encode("latin-1", "replace"))  # limits set

    # chat_request / anthropic_request: the client's body ([pick] first for the latter).
    bodies = [s for s in tests("tests/unit/providers/*_test.cpp", "tests/unit/app/*_test.cpp")
              if '"messages"' in s]
    bodies.append((root / "tests/data/anthropic/tool_round_trip.request.json").read_text())
    for i, b in enumerate(bodies):
        write("chat_request", b)
        write("anthropic_request", bytes([i % 256]) + b.encode())

    # anthropic_stream: [mode][split] body; mode bit 0 = include_usage, bits 1-2 = 0 Anthropic
    # stream, 2 another provider's stream (split byte picks it), 3 non-streamed decode.
    for p in sorted((root / "tests/data/anthropic").glob("*.sse")):
        write("anthropic_stream", b"\x01\xff" + p.read_bytes())
        write("anthropic_stream", b"\x00\x07" + p.read_bytes())
    for p in sorted((root / "tests/data/providers").glob("*_stream.sse")):
        name = p.name.split("_")[0]
        if name in providers:
            write("anthropic_stream", bytes([0x05, providers.index(name)]) + p.read_bytes())
    for s in tests("tests/unit/providers/anthropic_test.cpp"):
        if "event: " in s or "data: " in s:
            write("anthropic_stream", b"\x01\x09" + s.encode())
        elif s.lstrip().startswith("{") and ('"type"' in s or '"error"' in s):
            write("anthropic_stream", b"\x07\x00" + s.encode())  # status 200
            write("anthropic_stream", b"\x06\x08" + s.encode())  # status 429

    # sse: [split] bytes.
    for p in sorted((root / "tests/data").rglob("*.sse")):
        write("sse", b"\xff" + p.read_bytes())
        write("sse", b"\x03" + p.read_bytes())
    for s in tests("tests/unit/providers/sse_test.cpp"):
        if "data" in s or "\n" in s:
            write("sse", b"\x05" + s.encode())

    # config_load: the config text [NUL NAME=value lines].
    write("config_load", (root / "config/default.json").read_text())
    for s in tests("tests/unit/config/*_test.cpp"):
        if s.lstrip().startswith("{"):
            write("config_load", s)
    write("config_load", "{}\0IB_LISTEN=127.0.0.1:0\nIB_MASTER_KEY=a,b\nIB_OPENAI_BASE_URL=http://x/v1\n")

    for d in sorted(corpus.iterdir()):
        print(f"{d.name}: {len(list(d.glob('seed-*')))} seeds")


main()
