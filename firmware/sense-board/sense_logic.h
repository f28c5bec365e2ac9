/* fabgate sense board: the board's logic, apart from the hardware.
 *
 * Copyright (C) fablab-gateway developers
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * Everything here is a pure function of its arguments (or of a small struct the caller
 * owns): line formatting and checksums, host command parsing, input debounce and the
 * RMS of a window of ADC samples. The sketch (sense-board.ino) only adds the hardware
 * calls: analogRead, digitalRead, millis and Serial. Keeping the two apart lets the test
 * suite compile this file with the host's gcc and check it against the gateway's Python
 * driver (tests/test_sense_firmware.py), which no Arduino toolchain is needed for.
 *
 * Plain C99 so that both avr-gcc (Uno, Nano) and arm-none-eabi-gcc (RP2040) build it
 * unchanged, and no heap: every output goes into a buffer the caller passes, with its
 * size; a line that would not fit is not written (0 is returned).
 */
#ifndef FABGATE_SENSE_LOGIC_H
#define FABGATE_SENSE_LOGIC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Protocol version of PROTOCOL.md: the host refuses a board whose major differs. */
#define SENSE_PROTOCOL_MAJOR 2
#define SENSE_PROTOCOL_MINOR 0
#define SENSE_PROTOCOL_TEXT "2.0"

/* A line is at most this long, its checksum and newline included. */
#define SENSE_MAX_LINE 80
/* A host command longer than this is discarded (the longest one is "VERSION?*HH"). */
#define SENSE_MAX_COMMAND 24

/* CRC-8/SMBUS (polynomial 0x07, initial value 0, no reflection, no final xor) of n bytes.
 * Check value: "123456789" gives 0xF4. */
uint8_t sense_crc8(const char *data, size_t n);

/* Append "*HH\n" (the CRC-8 of the n bytes already in buf, upper-case hex) to the line
 * in buf. Returns the new length, or 0 if it does not fit in cap bytes (with its NUL). */
size_t sense_seal(char *buf, size_t n, size_t cap);

/* Whole lines, sealed. Each returns the length written (without the NUL), 0 if cap is
 * too small. Amps are in hundredths, so no printf of a float is needed (AVR's has none). */
size_t sense_format_current(char *out, size_t cap, uint8_t channel, uint32_t centiamps);
size_t sense_format_permissive(char *out, size_t cap, uint8_t input, uint8_t closed);
size_t sense_format_hello(char *out, size_t cap, const char *firmware);
size_t sense_format_version(char *out, size_t cap, const char *firmware, const char *board_id);
size_t sense_format_pong(char *out, size_t cap);
/* "ERR <word>": the answer to a command the board cannot take (bad checksum, unknown). */
size_t sense_format_error(char *out, size_t cap, const char *word);
/* "# clipped <channel>": not sealed, it is for a person (hosts skip '#' lines). */
size_t sense_format_clipped(char *out, size_t cap, uint8_t channel);

/* Amps to hundredths, rounded to the nearest; negative and not-a-number read 0. */
uint32_t sense_centiamps(float amps);

/* ---- host commands ---------------------------------------------------------------- */

typedef enum {
  SENSE_CMD_NONE = 0,     /* an empty line: nothing to answer */
  SENSE_CMD_PING,         /* "PING" -> "PONG" */
  SENSE_CMD_VERSION,      /* "VERSION?" -> "VERSION <firmware> <protocol> <board id>" */
  SENSE_CMD_BAD_CHECKSUM, /* a "*HH" that does not match -> "ERR checksum" */
  SENSE_CMD_UNKNOWN       /* anything else -> "ERR unknown" */
} sense_command;

/* One command line (without its newline; a trailing '\r' is ignored). The "*HH"
 * checksum is optional, so a person can type PING in a serial monitor; when present it
 * must match. */
sense_command sense_parse_command(const char *line, size_t n);

/* The reply line to a command; 0 (nothing to send) for SENSE_CMD_NONE. */
size_t sense_reply(sense_command cmd, char *out, size_t cap, const char *firmware,
                   const char *board_id);

/* Bytes from the host, gathered into lines. A line longer than SENSE_MAX_COMMAND is
 * dropped whole (up to its newline): a half command must never run. */
enum { SENSE_RX_GATHERING = 0, SENSE_RX_DISCARDING = 1, SENSE_RX_READY = 2 };

typedef struct {
  char buf[SENSE_MAX_COMMAND + 1];
  uint8_t len;
  uint8_t state; /* SENSE_RX_GATHERING, SENSE_RX_DISCARDING (too long) or SENSE_RX_READY */
} sense_rx;

void sense_rx_init(sense_rx *rx);
/* Feed one byte; returns 1 when rx->buf holds a complete line (rx->len bytes). The next
 * call starts a new line. */
int sense_rx_feed(sense_rx *rx, char c);

/* ---- permissive inputs ------------------------------------------------------------ */

/* A contact input (a water flow switch, the fume extractor's auxiliary contact) whose
 * state counts only once it has stayed the same for hold_ms: contacts bounce, and a
 * flow switch flutters at the edge of its set point. */
typedef struct {
  uint8_t known;     /* 0 until the first stable reading */
  uint8_t stable;    /* the debounced state (1 = closed = OK) */
  uint8_t candidate; /* the raw state being timed */
  uint32_t since_ms; /* when the candidate was first seen */
} sense_debounce;

void sense_debounce_init(sense_debounce *d, uint8_t raw, uint32_t now_ms);
/* A raw reading at now_ms (millis(), wrap-around safe). Returns 1 when the debounced
 * state changed (or became known), so the sketch prints a "P" line at once. */
int sense_debounce_update(sense_debounce *d, uint8_t raw, uint32_t now_ms, uint32_t hold_ms);

/* ---- RMS over a window ------------------------------------------------------------ */

typedef struct {
  uint32_t count;
  uint64_t sum;
  uint64_t sum_squares;
  uint8_t clipped;
} sense_window;

void sense_window_reset(sense_window *w);
/* One ADC sample; a sample at 0 or adc_max marks the window clipped. */
void sense_window_add(sense_window *w, uint16_t sample, uint16_t adc_max);
/* RMS in counts around the window's own mean (which removes the mid-rail bias). */
float sense_window_rms_counts(const sense_window *w);

#ifdef __cplusplus
}
#endif

#endif /* FABGATE_SENSE_LOGIC_H */
