/* time.h: wall-clock and monotonic time in int64 milliseconds (UTC). */
#ifndef PX_TIME_H
#define PX_TIME_H

#include <stddef.h>
#include <stdint.h>

int64_t px_now_ms(void);  /* milliseconds since the Unix epoch, UTC */
int64_t px_mono_ms(void); /* monotonic milliseconds, for timeouts and latency */
int64_t px_mono_ns(void); /* monotonic nanoseconds, for benchmarks */

/* "2026-11-22T10:15:30.123Z" into out (size >= 25). */
void px_time_iso8601(int64_t ms, char *out, size_t outsz);

/* Format with strftime in UTC ("%m%d" -> "1122"); returns 0 or PX_EINVAL. */
int px_time_format_utc(int64_t ms, const char *fmt, char *out, size_t outsz);

/* Parse "YYYY-MM-DD" into ms at 00:00 UTC; PX_EFORMAT on anything else. */
int px_time_parse_date(const char *s, int64_t *ms);

#endif
