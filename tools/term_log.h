/* The CLI's sink for the library's logger (fbnet.h fb_logger): messages on
 * stderr; progress on a terminal as one line that updates in place, a bar and
 * the text ("[#####.....]  42% epoch 3/12 ..."), redrawn at most every 0.2 s;
 * otherwise (a log file, a pipe) plain lines, one every 10 s.
 * FBNET_PROGRESS=lines forces plain lines, FBNET_PROGRESS=bar the bar. A
 * message arriving while the bar is on screen starts on its own line. */
#ifndef FB_TOOLS_TERM_LOG_H
#define FB_TOOLS_TERM_LOG_H

#include "fbnet.h"

/* The process's stderr logger (one terminal per process). */
const fb_logger *tool_logger(void);
/* Ends a bar line left on screen (before printing on stderr directly). */
void tool_logger_end(void);

#endif
