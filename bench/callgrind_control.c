/* Valgrind client requests for bench_metrics.py's instruction count [1b]: compiled into a
   small shared library that bench/metrics_urls.py loads with ctypes, so two requests can zero
   callgrind's counters and dump them around the measured requests. Outside valgrind the
   macros do nothing. */
#include <valgrind/callgrind.h>

void ops_callgrind_zero(void) { CALLGRIND_ZERO_STATS; }

void ops_callgrind_dump(void) { CALLGRIND_DUMP_STATS_AT("measured requests"); }
