/*
 * probe_gdb_impl.h - what the GDB probe's two files share: the limits,
 * the per-connection state, and the RSP packet layer and connecting
 * (probe_gdb_rsp.c) that the probe operations (probe_gdb.c) are built on.
 * Only those two files include it; probe.h is the interface.
 */
#ifndef PROBE_GDB_IMPL_H
#define PROBE_GDB_IMPL_H

#include "probe_impl.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RSP_PKT_DEFAULT 4096u  /* payload limit before qSupported */
#define RSP_PKT_MIN     64u
#define RSP_PKT_MAX     65536u /* largest PacketSize we accept */
#define RSP_RETRIES     3      /* resends after a '-' */
#define RSP_MAP_MAX     65536u /* memory-map XML */
#define RSP_REGIONS     16u
#define RSP_OUTPUT_MAX  1024   /* 'O' console packets per command */
#define RSP_MONITOR_OUT_MAX 1024u /* monitor output kept for expectN */
#define RSP_CMD_OVERHEAD 32u   /* "M" / "X" / "vFlashWrite:" + addr, len */

enum rsp_server { SRV_QEMU, SRV_OPENOCD, SRV_JLINK, SRV_PYOCD, SRV_BMP };

struct rsp_region {
	uint32_t start, len, blocksize;
};

struct gdb_probe {
	int               fd;
	enum rsp_server   server;
	bool              noack;
	bool              dead;     /* connection gone: every call fails */
	size_t            limit;    /* payload limit (PacketSize) */
	bool              map_offered;
	struct rsp_region flash[RSP_REGIONS];
	size_t            n_flash;
	int               x_ok;     /* X writes: 0 unknown, 1 yes, -1 no */
	bool              flash_open;
	bool              has_method; /* the target profile said how */
	bool              use_vflash; /* then: its [program] method */
	uint8_t           in[4096];
	size_t            in_pos, in_len;
	char              pkt[RSP_PKT_MAX + 1]; /* decoded reply, NUL ended */
	size_t            pkt_len;
	char              raw[RSP_PKT_MAX + 1]; /* received payload */
	char              out[RSP_PKT_MAX + 8]; /* framed outgoing packet */
	char              cmd[RSP_PKT_MAX + 1]; /* payload being built */
};


/* Lowercase hex digits, for building packets. */
extern const char rsp_hexdig[];

/* CLOCK_MONOTONIC in milliseconds. */
uint64_t rsp_now_ms(void);
/* The value of hex digit c, or -1. */
int rsp_hexval(int c);

/* The connection is unusable from now on; returns rv as the probe error. */
int rsp_lost(probe *p, struct gdb_probe *g, int rv, const char *what);
/* Write len bytes of buf before deadline. */
int rsp_send_raw(probe *p, struct gdb_probe *g, const void *buf, size_t len,
    uint64_t deadline, const char *what);
/* Send payload (already escaped where needed) as one packet and wait for
 * its ack (resending on '-'). */
int rsp_send(probe *p, struct gdb_probe *g, const char *payload, size_t len,
    const char *what);
/* Receive one packet into g->pkt (NAK and retry on a bad checksum). */
int rsp_recv_until(probe *p, struct gdb_probe *g, uint64_t deadline,
    const char *what);
int rsp_recv(probe *p, struct gdb_probe *g, const char *what);
/* Send a NUL-terminated command and receive its reply. */
int rsp_cmd(probe *p, struct gdb_probe *g, const char *cmd, const char *what);
/* Whether the reply in g->pkt is an "Exx" error. */
bool rsp_is_error(const struct gdb_probe *g);
/* The reply must be "OK". */
int rsp_want_ok(probe *p, struct gdb_probe *g, const char *what,
    uint32_t addr);
/* CS_OK while the connection is usable. */
int rsp_alive(probe *p, struct gdb_probe *g);

/* Connect g->fd to host:port, or to the socket at path. */
int rsp_connect_tcp(probe *p, struct gdb_probe *g, const char *where);
int rsp_connect_unix(probe *p, struct gdb_probe *g, const char *path);

#endif /* PROBE_GDB_IMPL_H */
