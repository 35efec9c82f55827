/* Small file helpers shared by the readers and writers of data, arch and
 * text files: whole-file reads, atomic writes, path joining. */
#ifndef FB_CORE_FILEIO_H
#define FB_CORE_FILEIO_H

#include <stddef.h>
#include <stdint.h>

#include "fbnet.h"

/* max_bytes for readers that accept a file of any size. */
#define FB_FILE_ANY_SIZE SIZE_MAX

/* Reads a whole file: malloc'd, NUL-terminated, its length in *len (len may
 * be NULL). NULL with a message naming the file when it cannot be opened
 * ("PATH: cannot open (reason)"), on a read error, or when it holds more
 * than max_bytes bytes (at most max_bytes + 1 bytes are read). */
char *fb_read_file(const char *path, size_t max_bytes, size_t *len, fb_status *st);
/* fb_read_file without the length. */
char *fb_read_text(const char *path, size_t max_bytes, fb_status *st);
/* The non-empty lines of a text file (trailing blanks, tabs and CR removed),
 * each malloc'd; *names NULL and *n 0 for a file without any. */
int fb_read_lines(const char *path, char ***names, int *n, fb_status *st);

/* Writes len bytes to PATH.tmp, fsyncs it and renames it over path; -1 with
 * a message naming the file on failure (PATH.tmp is removed then). */
int fb_write_file_atomic(const char *path, const void *data, size_t len, fb_status *st);
/* fb_write_file_atomic of a NUL-terminated text. */
int fb_write_text_atomic(const char *path, const char *text, fb_status *st);

/* Creates dir and every missing parent (mkdir -p); 0 when it exists as a
 * directory. -1 with "PATH: cannot create directory (reason)" naming the
 * component that failed (a file in the way, permissions, ...). */
int fb_mkdir_p(const char *dir, fb_status *st);
/* 1 when path names an existing directory. */
int fb_is_dir(const char *path);

/* Locks a run directory for this process (flock on DIR/.lock, which holds
 * the holder's pid): the descriptor to pass to fb_dir_unlock, or -1 with
 * "DIR: in use by process PID" when another process holds it. */
int fb_dir_lock(const char *dir, fb_status *st);
void fb_dir_unlock(int fd);

/* A JSON-lines log whose lines start with {"KEY": N: keeps the leading lines
 * with N <= max and drops the rest (the lines of a killed run past its last
 * checkpoint, which a resumed run writes again). A missing file is no error. */
int fb_jsonl_truncate(const char *path, const char *key, long max, fb_status *st);

/* "dir/name", malloc'd (trailing slashes of dir are not repeated). */
char *fb_path_join(const char *dir, const char *name);
/* "dir/name" into buf (n bytes, trailing slashes of dir not repeated); -1 with
 * st naming the path when it does not fit (never a silently cut path). */
int fb_path_in(char *buf, size_t n, const char *dir, const char *name, fb_status *st);

#endif
