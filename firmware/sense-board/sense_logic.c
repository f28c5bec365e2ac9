/* fabgate sense board: the board's logic, apart from the hardware (see sense_logic.h).
 *
 * Copyright (C) fablab-gateway developers
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * This program is free software: you can redistribute it and/or modify it under the
 * terms of the GNU General Public License as published by the Free Software Foundation,
 * either version 3 of the License, or (at your option) any later version.
 *
 * This program is distributed in the hope that it will be useful, but WITHOUT ANY
 * WARRANTY; without even the implied warranty of MERCHANTABILITY or FITNESS FOR A
 * PARTICULAR PURPOSE. See the GNU General Public License for more details.
 *
 * You should have received a copy of the GNU General Public License along with this
 * program. If not, see <https://www.gnu.org/licenses/>.
 */
#include "sense_logic.h"

#include <math.h>
#include <string.h>

static const char HEX[] = "0123456789ABCDEF";

uint8_t sense_crc8(const char *data, size_t n) {
  uint8_t crc = 0;
  for (size_t i = 0; i < n; i++) {
    crc ^= (uint8_t)data[i];
    for (uint8_t bit = 0; bit < 8; bit++) {
      crc = (crc & 0x80) ? (uint8_t)((crc << 1) ^ 0x07) : (uint8_t)(crc << 1);
    }
  }
  return crc;
}

size_t sense_seal(char *buf, size_t n, size_t cap) {
  if (n + 5 > cap || n + 4 > SENSE_MAX_LINE) {
    return 0; /* "*HH\n" and the NUL */
  }
  uint8_t crc = sense_crc8(buf, n);
  buf[n++] = '*';
  buf[n++] = HEX[crc >> 4];
  buf[n++] = HEX[crc & 0x0F];
  buf[n++] = '\n';
  buf[n] = '\0';
  return n;
}

/* A line under construction: appends stop (and mark the line failed) at the capacity. */
typedef struct {
  char *out;
  size_t cap;
  size_t len;
  int failed;
} builder;

static void put_text(builder *b, const char *text) {
  size_t n = strlen(text);
  if (b->failed || b->len + n + 1 > b->cap) {
    b->failed = 1;
    return;
  }
  memcpy(b->out + b->len, text, n);
  b->len += n;
  b->out[b->len] = '\0';
}

static void put_unsigned(builder *b, uint32_t value, uint8_t min_digits) {
  char digits[11];
  uint8_t k = 0;
  do {
    digits[k++] = (char)('0' + value % 10);
    value /= 10;
  } while (value != 0 && k < sizeof(digits) - 1);
  while (k < min_digits && k < sizeof(digits) - 1) {
    digits[k++] = '0';
  }
  char text[11];
  for (uint8_t i = 0; i < k; i++) {
    text[i] = digits[k - 1 - i];
  }
  text[k] = '\0';
  put_text(b, text);
}

static size_t finish(builder *b, int sealed) {
  if (b->failed) {
    if (b->cap > 0) {
      b->out[0] = '\0';
    }
    return 0;
  }
  if (sealed) {
    size_t n = sense_seal(b->out, b->len, b->cap);
    if (n == 0) {
      b->out[0] = '\0'; /* nothing half written */
    }
    return n;
  }
  if (b->len + 2 > b->cap) {
    b->out[0] = '\0';
    return 0;
  }
  b->out[b->len++] = '\n';
  b->out[b->len] = '\0';
  return b->len;
}

static builder start(char *out, size_t cap) {
  builder b = {out, cap, 0, cap == 0};
  if (cap > 0) {
    out[0] = '\0';
  }
  return b;
}

size_t sense_format_current(char *out, size_t cap, uint8_t channel, uint32_t centiamps) {
  builder b = start(out, cap);
  put_text(&b, "I ");
  put_unsigned(&b, channel, 1);
  put_text(&b, " ");
  put_unsigned(&b, centiamps / 100, 1);
  put_text(&b, ".");
  put_unsigned(&b, centiamps % 100, 2);
  return finish(&b, 1);
}

size_t sense_format_permissive(char *out, size_t cap, uint8_t input, uint8_t closed) {
  builder b = start(out, cap);
  put_text(&b, "P ");
  put_unsigned(&b, input, 1);
  put_text(&b, closed ? " 1" : " 0");
  return finish(&b, 1);
}

size_t sense_format_hello(char *out, size_t cap, const char *firmware) {
  (void)firmware; /* the banner names the protocol; VERSION? tells the firmware */
  builder b = start(out, cap);
  put_text(&b, "HELLO fabgate-sense " SENSE_PROTOCOL_TEXT);
  return finish(&b, 1);
}

size_t sense_format_version(char *out, size_t cap, const char *firmware, const char *board_id) {
  builder b = start(out, cap);
  put_text(&b, "VERSION ");
  put_text(&b, firmware);
  put_text(&b, " " SENSE_PROTOCOL_TEXT " ");
  put_text(&b, board_id);
  return finish(&b, 1);
}

size_t sense_format_pong(char *out, size_t cap) {
  builder b = start(out, cap);
  put_text(&b, "PONG");
  return finish(&b, 1);
}

size_t sense_format_error(char *out, size_t cap, const char *word) {
  builder b = start(out, cap);
  put_text(&b, "ERR ");
  put_text(&b, word);
  return finish(&b, 1);
}

size_t sense_format_clipped(char *out, size_t cap, uint8_t channel) {
  builder b = start(out, cap);
  put_text(&b, "# clipped ");
  put_unsigned(&b, channel, 1);
  return finish(&b, 0);
}

uint32_t sense_centiamps(float amps) {
  if (!(amps > 0.0f)) {
    return 0; /* negative, zero and NaN */
  }
  if (amps > 40000000.0f) {
    return 4000000000u; /* far above any clamp: saturate instead of overflowing */
  }
  return (uint32_t)(amps * 100.0f + 0.5f);
}

static int hex_value(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  return -1;
}

static int is(const char *line, size_t n, const char *word) {
  size_t w = strlen(word);
  return n == w && memcmp(line, word, w) == 0;
}

sense_command sense_parse_command(const char *line, size_t n) {
  if (n > 0 && line[n - 1] == '\r') {
    n--;
  }
  if (n == 0) {
    return SENSE_CMD_NONE;
  }
  if (n >= 3 && line[n - 3] == '*') {
    int hi = hex_value(line[n - 2]), lo = hex_value(line[n - 1]);
    if (hi < 0 || lo < 0 || sense_crc8(line, n - 3) != (uint8_t)(hi * 16 + lo)) {
      return SENSE_CMD_BAD_CHECKSUM;
    }
    n -= 3;
  }
  if (is(line, n, "PING")) {
    return SENSE_CMD_PING;
  }
  if (is(line, n, "VERSION?")) {
    return SENSE_CMD_VERSION;
  }
  return SENSE_CMD_UNKNOWN;
}

size_t sense_reply(sense_command cmd, char *out, size_t cap, const char *firmware,
                   const char *board_id) {
  switch (cmd) {
    case SENSE_CMD_PING:
      return sense_format_pong(out, cap);
    case SENSE_CMD_VERSION:
      return sense_format_version(out, cap, firmware, board_id);
    case SENSE_CMD_BAD_CHECKSUM:
      return sense_format_error(out, cap, "checksum");
    case SENSE_CMD_UNKNOWN:
      return sense_format_error(out, cap, "unknown");
    case SENSE_CMD_NONE:
    default:
      if (cap > 0) {
        out[0] = '\0';
      }
      return 0;
  }
}

void sense_rx_init(sense_rx *rx) {
  rx->len = 0;
  rx->state = SENSE_RX_GATHERING;
  rx->buf[0] = '\0';
}

int sense_rx_feed(sense_rx *rx, char c) {
  if (rx->state == SENSE_RX_READY) {
    sense_rx_init(rx); /* the last line was handed out: this byte starts a new one */
  }
  if (c == '\n') {
    if (rx->state == SENSE_RX_DISCARDING) {
      sense_rx_init(rx); /* the end of a line too long to be a command */
      return 0;
    }
    rx->state = SENSE_RX_READY;
    return 1;
  }
  if (rx->state == SENSE_RX_DISCARDING) {
    return 0;
  }
  if (rx->len >= SENSE_MAX_COMMAND) {
    rx->state = SENSE_RX_DISCARDING;
    rx->len = 0;
    rx->buf[0] = '\0';
    return 0;
  }
  rx->buf[rx->len++] = c;
  rx->buf[rx->len] = '\0';
  return 0;
}

void sense_debounce_init(sense_debounce *d, uint8_t raw, uint32_t now_ms) {
  d->known = 0;
  d->stable = 0;
  d->candidate = raw ? 1 : 0;
  d->since_ms = now_ms;
}

int sense_debounce_update(sense_debounce *d, uint8_t raw, uint32_t now_ms, uint32_t hold_ms) {
  uint8_t value = raw ? 1 : 0;
  if (value != d->candidate) {
    d->candidate = value;
    d->since_ms = now_ms;
    return 0;
  }
  /* Unsigned subtraction: right across millis() wrapping after 49 days. */
  if ((uint32_t)(now_ms - d->since_ms) < hold_ms) {
    return 0;
  }
  if (d->known && d->stable == value) {
    return 0;
  }
  d->known = 1;
  d->stable = value;
  return 1;
}

void sense_window_reset(sense_window *w) {
  w->count = 0;
  w->sum = 0;
  w->sum_squares = 0;
  w->clipped = 0;
}

void sense_window_add(sense_window *w, uint16_t sample, uint16_t adc_max) {
  w->count++;
  w->sum += sample;
  w->sum_squares += (uint32_t)sample * sample;
  if (sample == 0 || sample >= adc_max) {
    w->clipped = 1;
  }
}

/* n*sum(x^2) - sum(x)^2 is exact in 64-bit integers, where the floating-point
 * E[x^2] - E[x]^2 would cancel a small current away against a bias of hundreds of
 * counts (AVR floats have 24 bits of mantissa). */
float sense_window_rms_counts(const sense_window *w) {
  if (w->count == 0) {
    return 0.0f;
  }
  uint64_t n = w->count;
  uint64_t spread = n * w->sum_squares - w->sum * w->sum;
  return (float)(sqrt((double)spread) / (double)n);
}
