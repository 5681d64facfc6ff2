/*
 * dap.h - CMSIS-DAP (v2, bulk) commands over a small transport, so that
 * the same code runs over libusb (dap_usb.c) and over an in-process
 * transport in tests (dap_sim.h).
 *
 * Only what the station needs: DAP_Info, DAP_Connect (SWD),
 * DAP_Disconnect, DAP_SWJ_Clock, DAP_SWJ_Sequence (line reset,
 * JTAG-to-SWD), DAP_SWD_Configure, DAP_TransferConfigure, DAP_Transfer,
 * DAP_TransferBlock, DAP_ResetTarget.  WAIT answers are retried (as
 * configured with DAP_TransferConfigure and again here, bounded); FAULT
 * clears the sticky errors through DP ABORT and fails the call.
 */
#ifndef DAP_H
#define DAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One command out, one response in (the CMSIS-DAP v2 bulk endpoints). */
struct dap_transport {
	void  *ctx;
	size_t packet_size; /* largest command or response, bytes */
	/* Send cmd (len bytes) and receive the response into rsp (at most
	 * rsp_size bytes); CS_OK, CS_ETIMEDOUT, CS_ECLOSED (unplugged),
	 * CS_EIO. */
	int (*xfer)(void *ctx, const uint8_t *cmd, size_t len, uint8_t *rsp,
	    size_t rsp_size, size_t *rsp_len, unsigned timeout_ms);
	void (*close)(void *ctx);
};

typedef struct dap dap;

/* Command ids (CMSIS-DAP specification). */
#define DAP_CMD_INFO               0x00u
#define DAP_CMD_CONNECT            0x02u
#define DAP_CMD_DISCONNECT         0x03u
#define DAP_CMD_TRANSFER_CONFIGURE 0x04u
#define DAP_CMD_TRANSFER           0x05u
#define DAP_CMD_TRANSFER_BLOCK     0x06u
#define DAP_CMD_RESET_TARGET       0x0Au
#define DAP_CMD_SWJ_CLOCK          0x11u
#define DAP_CMD_SWJ_SEQUENCE       0x12u
#define DAP_CMD_SWD_CONFIGURE      0x13u

/* Transfer request bits (DAP_Transfer). */
#define DAP_XFER_APnDP   0x01u
#define DAP_XFER_RnW     0x02u
#define DAP_XFER_A23(a)  (((a) >> 0) & 0x0Cu) /* register address bits 2,3 */

/* Transfer response ACK values. */
#define DAP_ACK_OK    1u
#define DAP_ACK_WAIT  2u
#define DAP_ACK_FAULT 4u

/* Take t (dap_close closes it).  Errors: CS_EINVAL, CS_ENOMEM. */
int  dap_open(dap **out, const struct dap_transport *t, unsigned timeout_ms);
void dap_close(dap *d);

/* The last error's text. */
const char *dap_error(const dap *d);

/* DAP_Info string (id 1..4: vendor, product, serial, protocol version). */
int dap_info_string(dap *d, uint8_t id, char *out, size_t len);

/* SWD: connect, clock (Hz), line reset + JTAG-to-SWD + line reset, read
 * DPIDR.  Errors: CS_EIO (no target answers: err says), CS_ECLOSED. */
int dap_connect_swd(dap *d, uint32_t clock_hz, uint32_t *dpidr);

/* One DP or AP register (addr 0x0..0xC). */
int dap_reg_read(dap *d, bool ap, uint8_t addr, uint32_t *val);
int dap_reg_write(dap *d, bool ap, uint8_t addr, uint32_t val);

/* Several reads of one AP register (DAP_TransferBlock). */
int dap_ap_read_block(dap *d, uint8_t addr, uint32_t *vals, size_t n);
int dap_ap_write_block(dap *d, uint8_t addr, const uint32_t *vals, size_t n);

/* DAP_ResetTarget (the probe's nRESET where it has one). */
int dap_reset_target(dap *d);

#endif /* DAP_H */
