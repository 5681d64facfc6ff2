/*
 * measure.h - the firmware measures itself: the SHA-256 that a device
 * record's firmware digest must equal (docs/record-format.md, "Firmware
 * digest").
 */
#ifndef CS_MEASURE_H
#define CS_MEASURE_H

#include <stdint.h>

/*
 * SHA-256 over this image as it lies in flash: from __cs_image_start to
 * __cs_image_end (linker script), without __cs_record_start ..
 * __cs_record_end where that area lies inside the span.  Reads flash
 * only; 520 bytes of stack (its own 160, wolfCrypt's SHA-256 transform
 * 336).  Returns 0, or -1 if wolfCrypt failed (digest is then all 0x00,
 * and the caller must not verify).
 */
int cs_fw_measure(uint8_t digest[32]);

#endif /* CS_MEASURE_H */
