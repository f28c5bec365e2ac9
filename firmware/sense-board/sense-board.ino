// fabgate sense board: RMS current of one or two clamps, printed over USB serial.
//
// Copyright (C) fablab-gateway developers
// SPDX-License-Identifier: GPL-3.0-or-later
//
// This program is free software: you can redistribute it and/or modify it under the
// terms of the GNU General Public License as published by the Free Software Foundation,
// either version 3 of the License, or (at your option) any later version.
//
// This program is distributed in the hope that it will be useful, but WITHOUT ANY
// WARRANTY; without even the implied warranty of MERCHANTABILITY or FITNESS FOR A
// PARTICULAR PURPOSE. See the GNU General Public License for more details.
//
// You should have received a copy of the GNU General Public License along with this
// program. If not, see <https://www.gnu.org/licenses/>.
//
// The wire format is in PROTOCOL.md next to this file, the wiring and the flashing
// commands in ../README.md. Targets: ATmega328 boards (Uno, Nano) and RP2040 boards
// (Raspberry Pi Pico with the arduino-pico core).
//
// Why a microcontroller at all: computing an RMS needs evenly spaced samples over whole
// mains cycles. A bare loop here delivers that; Python on a busy Pi does not.

#include <Arduino.h>

#include "sense_logic.h"

// ---- settings to adapt to the clamp and the board --------------------------------

// The firmware's own version; the protocol's is SENSE_PROTOCOL_TEXT in sense_logic.h.
#define FIRMWARE_VERSION "2.0.0"
// Told to the host in the VERSION reply: set one per board so the node's log says which
// board it talks to (letters, digits, '-' and '_' only, no spaces).
#define BOARD_ID "sense-1"

// 1 or 2 clamps, on these analog pins.
const uint8_t CHANNELS = 1;
const uint8_t CLAMP_PINS[2] = {A0, A1};

// Permissive inputs: a contact to ground each (a water flow switch, the fume extractor's
// auxiliary contact), read with the internal pull-up. Closed = LOW = OK ("1" on the
// wire); a cut wire reads open, i.e. not OK. 0, 1 or 2 of them.
const uint8_t PERMISSIVES = 2;
const uint8_t PERMISSIVE_PINS[2] = {2, 3};
// A contact counts only once stable this long: contacts bounce, flow switches flutter.
const uint32_t PERMISSIVE_DEBOUNCE_MS = 200;
// Besides every change, each input is repeated every so many windows (5 = 1 s), so a
// host that opens the port late learns its state within a second.
const uint16_t PERMISSIVE_EVERY = 5;

// A current-output clamp (SCT-013-000: 100 A : 50 mA, i.e. 2000 turns) across a burden
// resistor. For a voltage-output clamp (e.g. SCT-013-030, "30A/1V"), set TURNS to the
// amps per volt (30) and BURDEN_OHMS to 1: the formula below then gives the same scale.
const float TURNS = 2000.0;
const float BURDEN_OHMS[2] = {100.0, 100.0};

// Correction found against a clamp meter on a resistive load: reference / reading.
const float CALIBRATION[2] = {1.0, 1.0};

// 200 ms is 10 whole cycles at 50 Hz and 12 at 60 Hz, so no partial cycle skews the RMS.
const unsigned long WINDOW_MS = 200;
const unsigned long BAUD = 115200;
// The banner is repeated so a host that opens the port late (USB boards that do not
// reset on open) still learns what it talks to: every 50 windows, i.e. 10 s.
const uint16_t HELLO_EVERY = 50;

#if defined(ARDUINO_ARCH_RP2040)
const uint8_t ADC_BITS = 12;
const float VREF = 3.3;
#else
const uint8_t ADC_BITS = 10;
const float VREF = 5.0;  // AVCC from USB: 4.7-5.1 V in practice; CALIBRATION absorbs it
#endif
const uint16_t ADC_MAX = (1u << ADC_BITS) - 1;

// ---- state -----------------------------------------------------------------------

static sense_window windows[2];
static sense_debounce inputs[2];
static sense_rx rx;
static uint16_t windows_done = 0;
static char line[SENSE_MAX_LINE + 1];

static void send(size_t n) {
  if (n > 0) {
    Serial.write((const uint8_t *)line, n);
  }
}

static float ampsPerCount(uint8_t channel) {
  return VREF / (ADC_MAX + 1.0) / BURDEN_OHMS[channel] * TURNS * CALIBRATION[channel];
}

static uint8_t readPermissive(uint8_t n) {
  return digitalRead(PERMISSIVE_PINS[n]) == LOW ? 1 : 0;  // closed to ground = OK
}

// Between samples: host commands and the permissive inputs, both cheap enough not to
// disturb the sampling rhythm (a few microseconds when nothing happens).
static void serviceHostAndInputs() {
  while (Serial.available() > 0) {
    if (sense_rx_feed(&rx, (char)Serial.read())) {
      sense_command cmd = sense_parse_command(rx.buf, rx.len);
      send(sense_reply(cmd, line, sizeof(line), FIRMWARE_VERSION, BOARD_ID));
    }
  }
  uint32_t now = millis();
  for (uint8_t n = 0; n < PERMISSIVES; n++) {
    if (sense_debounce_update(&inputs[n], readPermissive(n), now, PERMISSIVE_DEBOUNCE_MS)) {
      send(sense_format_permissive(line, sizeof(line), n, inputs[n].stable));
    }
  }
}

void setup() {
  Serial.begin(BAUD);
#if defined(ARDUINO_ARCH_RP2040)
  analogReadResolution(ADC_BITS);
#endif
  sense_rx_init(&rx);
  for (uint8_t n = 0; n < PERMISSIVES; n++) {
    pinMode(PERMISSIVE_PINS[n], INPUT_PULLUP);
    sense_debounce_init(&inputs[n], readPermissive(n), millis());
  }
  send(sense_format_hello(line, sizeof(line), FIRMWARE_VERSION));
}

void loop() {
  for (uint8_t ch = 0; ch < CHANNELS; ch++) {
    sense_window_reset(&windows[ch]);
  }
  unsigned long start = millis();
  while (millis() - start < WINDOW_MS) {
    for (uint8_t ch = 0; ch < CHANNELS; ch++) {
      sense_window_add(&windows[ch], analogRead(CLAMP_PINS[ch]), ADC_MAX);
    }
    serviceHostAndInputs();
  }
  for (uint8_t ch = 0; ch < CHANNELS; ch++) {
    float amps = sense_window_rms_counts(&windows[ch]) * ampsPerCount(ch);
    send(sense_format_current(line, sizeof(line), ch, sense_centiamps(amps)));
    if (windows[ch].clipped) {
      // For a person at a serial monitor; the gateway skips '#' lines. A clipped
      // signal reads low: use a smaller burden resistor.
      send(sense_format_clipped(line, sizeof(line), ch));
    }
  }
  ++windows_done;
  if (windows_done % PERMISSIVE_EVERY == 0) {
    for (uint8_t n = 0; n < PERMISSIVES; n++) {
      if (inputs[n].known) {
        send(sense_format_permissive(line, sizeof(line), n, inputs[n].stable));
      }
    }
  }
  if (windows_done >= HELLO_EVERY) {
    windows_done = 0;
    send(sense_format_hello(line, sizeof(line), FIRMWARE_VERSION));
  }
}
