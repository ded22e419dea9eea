// The parts of ncursesw that Swift cannot import directly (macros, globals that are not
// concurrency-safe, variadic functions), wrapped in static inline functions.
#ifndef RBACWATCH_CNCURSES_SHIM_H
#define RBACWATCH_CNCURSES_SHIM_H

#define NCURSES_WIDECHAR 1
#define _XOPEN_SOURCE_EXTENDED 1
#include <langinfo.h>
#include <locale.h>
#include <stdio.h>
#include <wchar.h>
#include <ncursesw/curses.h>
#include <sys/ioctl.h>
#include <unistd.h>

int wcwidth(wchar_t c);

static inline WINDOW *rbw_stdscr(void) { return stdscr; }
static inline WINDOW *rbw_curscr(void) { return curscr; }
/// A screen on the process's standard output and input.
static inline SCREEN *rbw_newterm(void) { return newterm(NULL, stdout, stdin); }
/// The locale's character set (UTF-8 or not), after setlocale.
static inline const char *rbw_codeset(void) { return nl_langinfo(CODESET); }
static inline int rbw_lines(void) { return LINES; }
static inline int rbw_cols(void) { return COLS; }
static inline int rbw_colors(void) { return COLORS; }
static inline int rbw_color_pairs(void) { return COLOR_PAIRS; }
static inline void rbw_getmaxyx(int *rows, int *cols) { getmaxyx(stdscr, *rows, *cols); }

static inline attr_t rbw_a_normal(void) { return A_NORMAL; }
static inline attr_t rbw_a_bold(void) { return A_BOLD; }
static inline attr_t rbw_a_dim(void) { return A_DIM; }
static inline attr_t rbw_a_reverse(void) { return A_REVERSE; }
static inline attr_t rbw_a_underline(void) { return A_UNDERLINE; }

static inline int rbw_key_resize(void) { return KEY_RESIZE; }

/// Writes one character cell (a base character and up to four combining marks) at (y, x)
/// with attributes and an extended colour pair.
static inline int rbw_put_cell(int y, int x, const wchar_t *text, attr_t attributes, int pair) {
    cchar_t cell;
    if (setcchar(&cell, text, attributes, 0, &pair) != OK) return ERR;
    return mvwadd_wch(stdscr, y, x, &cell);
}

static inline int rbw_init_pair(int pair, int fg, int bg) { return init_extended_pair(pair, fg, bg); }
static inline int rbw_get_wch(wint_t *ch) { return wget_wch(stdscr, ch); }
static inline int rbw_wcwidth(wchar_t c) { return wcwidth(c); }

/// The terminal's size as the kernel knows it (ncurses may not have heard of a resize yet).
static inline int rbw_window_size(int fd, int *rows, int *cols) {
    struct winsize size;
    if (ioctl(fd, TIOCGWINSZ, &size) != 0) return -1;
    *rows = size.ws_row;
    *cols = size.ws_col;
    return 0;
}

#endif
