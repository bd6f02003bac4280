#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace ib {

/// Parses an HTTP-date (RFC 9110 §5.6.7) into Unix seconds (UTC; negative before 1970). Accepts
/// the preferred IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) and the obsolete RFC 850
/// (`Sunday, 06-Nov-94 08:49:37 GMT`) and asctime (`Sun Nov  6 08:49:37 1994`) forms, exactly
/// (case-sensitive names, single spaces except one or more before asctime's 1- or 2-digit day;
/// the caller trims surrounding whitespace).
///
/// The day name must be a valid one but is not checked against the date. Second 60 (a leap
/// second) is accepted and read as 59. `now_unix_s`, the wall clock in Unix seconds, is used only
/// to resolve RFC 850's two-digit year: the latest year with those digits that is not more than
/// 50 years after the current one. Returns nullopt for anything else, including dates that do
/// not exist (`30 Feb`), hours above 23 and minutes above 59. Never throws; any bytes are safe
/// input.
std::optional<std::int64_t> parse_http_date(std::string_view text, std::int64_t now_unix_s);

}  // namespace ib
