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

// ---- settings to adapt to the clamp and the board --------------------------------

// Protocol major version first: the gateway checks it (see PROTOCOL.md).
#define FIRMWARE_VERSION "1.0"

// 1 or 2 clamps, on these analog pins.
const uint8_t CHANNELS = 1;
const uint8_t CLAMP_PINS[2] = {A0, A1};

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

// ---- measuring -------------------------------------------------------------------

struct Window {
  uint32_t count;
  uint64_t sum;
  uint64_t sum_squares;
  bool clipped;
};

static Window windows[2];
static uint16_t windows_done = 0;

static void sayHello() {
  Serial.print(F("HELLO fabgate-sense " FIRMWARE_VERSION "\n"));
}

static float ampsPerCount(uint8_t channel) {
  return VREF / (ADC_MAX + 1.0) / BURDEN_OHMS[channel] * TURNS * CALIBRATION[channel];
}

// RMS in counts around the window's own mean, which removes the mid-rail bias whatever
// its exact value. n*sum(x^2) - sum(x)^2 is exact in 64-bit integers, where the
// floating-point E[x^2] - E[x]^2 would cancel away a small current against a bias
// of hundreds of counts (AVR floats have only 24 bits of mantissa).
static float rmsCounts(const Window &w) {
  if (w.count == 0) {
    return 0.0;
  }
  uint64_t n = w.count;
  uint64_t spread = n * w.sum_squares - w.sum * w.sum;
  return sqrt((double)spread) / (double)n;
}

void setup() {
  Serial.begin(BAUD);
#if defined(ARDUINO_ARCH_RP2040)
  analogReadResolution(ADC_BITS);
#endif
  sayHello();
}

void loop() {
  for (uint8_t ch = 0; ch < CHANNELS; ch++) {
    windows[ch] = Window{0, 0, 0, false};
  }
  unsigned long start = millis();
  while (millis() - start < WINDOW_MS) {
    for (uint8_t ch = 0; ch < CHANNELS; ch++) {
      uint16_t v = analogRead(CLAMP_PINS[ch]);
      Window &w = windows[ch];
      w.count++;
      w.sum += v;
      w.sum_squares += (uint32_t)v * v;
      if (v == 0 || v == ADC_MAX) {
        w.clipped = true;
      }
    }
  }
  for (uint8_t ch = 0; ch < CHANNELS; ch++) {
    float amps = rmsCounts(windows[ch]) * ampsPerCount(ch);
    Serial.print(F("I "));
    Serial.print(ch);
    Serial.print(' ');
    Serial.print(amps, 2);
    Serial.print('\n');
    if (windows[ch].clipped) {
      // For a person at a serial monitor; the gateway skips '#' lines. A clipped
      // signal reads low: use a smaller burden resistor.
      Serial.print(F("# clipped "));
      Serial.print(ch);
      Serial.print('\n');
    }
  }
  if (++windows_done >= HELLO_EVERY) {
    windows_done = 0;
    sayHello();
  }
}
