#!/usr/bin/env python3
"""skip-campaign.py - instruction-skip fault injection on the example
firmware (QEMU lm3s6965evb), one skipped instruction per boot.

    skip-campaign.py --elf FW.ELF --record REC.BIN --uid 0xHEX
        [--mode ci|full] [--sample N] [--seed S] [--jobs J] [--qemu PATH]

The record and the UID are a forgery the firmware must refuse (a record
with a bad signature, or a genuine record on a device with another UID).

1. Trace: one boot under QEMU's -d in_asm,exec,nochain gives every
   instruction executed between the markers cs_mark_verify_start and
   cs_mark_verify_end around the cs_verify_record call in main.c, and how
   often each address ran (as count-insns.sh counts them).
2. Skips: each skip is one boot.  QEMU starts halted with its gdbstub on a
   Unix socket; this script breaks at cs_mark_verify_start (so that the
   counts are those of the verify only), then at the chosen address
   until its k-th execution, sets PC past that one instruction (2 or 4
   bytes, decoded from its first halfword: Thumb-2 32-bit encodings start
   with 0b11101, 0b11110 or 0b11111) and lets the firmware run to its
   semihosting exit, with a per-boot timeout.  Exit 0 or "device
   authorized" in its output is an authorizing skip.
3. What is skipped:
   decisive  every instruction of the functions that decide (the
             verifier's own code and, per algorithm, the wolfCrypt
             functions from the end of the curve arithmetic to the
             verdict: DECISIVE below); ci: at its first and its last
             execution (a loop's first and last iteration, both runs of
             a function called twice); full: at every execution;
   others    ci:   a seeded random sample (--sample) of the other
                   instructions the verify executes, each at its first
                   execution;
             full: every other instruction the verify executes, at its
                   first execution.
   Skipping every one of the ~42 M (P-256) or ~78 M (Ed25519) executed
   instructions is out of reach (one boot each); a skip inside the curve
   arithmetic changes the computed point, which then fails the final
   comparison that the decisive set covers exhaustively.

Prints one summary line and every authorizing skip; exits 1 when a skip
authorized, 2 on usage or set-up errors, 0 otherwise.
"""
import argparse
import os
import random
import shutil
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

# The functions whose every executed instruction is skipped, every time.
DECISIVE = [
    # target/src/verify.c (static ones may be inlined: missing is fine)
    "cs_verify_record", "check_header", "find_key", "ct_diff",
    "check_firmware", "fill_info", "get_le32",
    # target/src/crypto_wolfcrypt_sp.c / crypto_wolfcrypt.c
    "cs_crypto_verify", "cs_crypto_has_alg", "in_range", "verify_p256",
    "verify_ed25519", "sig_verdict", "verdict_words",
    # wolfCrypt P-256: the verify function's own code (its arithmetic
    # lives in callees) and the final comparison, sp_256_cmp_9 (not
    # sp_256_cmp_equal_9: that one is point addition's, arithmetic,
    # hundreds of calls)
    "sp_ecc_verify_256", "sp_256_cmp_9",
    # wolfCrypt Ed25519: the verify entry points and the final compare
    "wc_ed25519_verify_msg", "wc_ed25519_verify_msg_ex",
    "ed25519_verify_msg_final_with_sha", "ConstantCompare",
]

BOARD = ["-M", "lm3s6965evb", "-nographic", "-monitor", "none",
         "-serial", "none", "-semihosting-config",
         "enable=on,target=native"]


def symbols(elf):
    """name -> (addr, size) of the function symbols of elf."""
    out = subprocess.run(["arm-none-eabi-nm", "-S", elf], check=True,
                         capture_output=True, text=True).stdout
    syms = {}
    for line in out.splitlines():
        f = line.split()
        if len(f) == 4 and f[2] in "tTwW":
            syms[f[3]] = (int(f[0], 16) & ~1, int(f[1], 16))
    return syms


def flash_image(elf, tmp):
    path = os.path.join(tmp, "fw.bin")
    subprocess.run(["arm-none-eabi-objcopy", "-O", "binary", elf, path],
                   check=True)
    with open(path, "rb") as f:
        return f.read()


def insn_size(image, addr):
    hw = image[addr] | image[addr + 1] << 8
    return 4 if (hw >> 11) in (0x1D, 0x1E, 0x1F) else 2


def qemu_args(a, extra):
    return [a.qemu] + BOARD + [
        "-kernel", a.elf,
        "-device", "loader,file=%s,addr=0x3F000" % a.record,
        "-device", "loader,addr=0x2000FF00,data=%s,data-len=8" % a.uid,
    ] + extra


def trace(a, syms, tmp):
    """Run once with QEMU's execution log; returns {addr: executions}
    of the instructions executed inside the verify."""
    start = syms["cs_mark_verify_start"][0]
    end = syms["cs_mark_verify_end"][0]
    log = os.path.join(tmp, "trace.fifo")
    os.mkfifo(log)
    out = open(os.path.join(tmp, "trace.out"), "w")
    q = subprocess.Popen(qemu_args(a, ["-icount", "shift=0", "-d",
                                       "in_asm,exec,nochain", "-D", log]),
                         stdout=out, stderr=subprocess.STDOUT)
    tb_insns = {}    # TB start -> instruction addresses
    tb_runs = {}     # TB start -> executions inside the verify
    cur = None
    state = 0
    pc_re = re.compile(r"\[[0-9a-f]+/([0-9a-f]+)/")
    with open(log) as f:
        for line in f:
            c = line[0]
            if c == "0" and line.startswith("0x"):
                addr = int(line[2:10], 16)
                if cur is None:
                    cur = addr
                    tb_insns[cur] = []
                tb_insns[cur].append(addr)
            elif c == "I" and line.startswith("IN:"):
                cur = None
            elif c == "T" and line.startswith("Trace "):
                m = pc_re.search(line)
                if m is None:
                    continue
                pc = int(m.group(1), 16)
                if pc == start and state == 0:
                    state = 1
                    continue
                if pc == end and state == 1:
                    state = 2
                    continue
                if state == 1:
                    tb_runs[pc] = tb_runs.get(pc, 0) + 1
    q.wait()
    out.close()
    if state != 2:
        sys.exit("skip-campaign: markers not reached in the trace")
    counts = {}
    for tb, n in tb_runs.items():
        for addr in tb_insns[tb]:
            counts[addr] = counts.get(addr, 0) + n
    return counts


class Rsp:
    """The few GDB remote protocol packets a skip needs."""

    def __init__(self, path, deadline):
        self.deadline = deadline
        for _ in range(500):
            try:
                self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.s.connect(path)
                break
            except OSError:
                self.s.close()
                time.sleep(0.01)
        else:
            raise OSError("no gdbstub at " + path)
        self.buf = b""

    def close(self):
        self.s.close()

    def _byte(self):
        while not self.buf:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError()
            self.s.settimeout(left)
            d = self.s.recv(4096)
            if not d:
                raise EOFError()
            self.buf = d
        b, self.buf = self.buf[:1], self.buf[1:]
        return b

    def send(self, data):
        body = data.encode()
        pkt = b"$" + body + b"#%02x" % (sum(body) & 0xFF)
        self.s.sendall(pkt)
        while self._byte() != b"+":
            pass

    def reply(self):
        while self._byte() != b"$":
            pass
        body = b""
        while True:
            b = self._byte()
            if b == b"#":
                break
            body += b
        self._byte()
        self._byte()
        self.s.sendall(b"+")
        return body.decode(errors="replace")

    def cmd(self, data):
        self.send(data)
        return self.reply()


def skip_one(a, image, start, addr, k, timeout, tmp, n):
    """Boot once, skip the k-th execution (within the verify) of the
    instruction at addr.  Returns authorized|refused|fault|hang|crash|
    unreached and QEMU's output."""
    sock = os.path.join(tmp, "gdb%d.sock" % n)
    outp = os.path.join(tmp, "out%d.txt" % n)
    if os.path.exists(sock):
        os.unlink(sock)
    with open(outp, "w") as out:
        q = subprocess.Popen(qemu_args(a, ["-S", "-gdb",
                                           "unix:%s,server=on,wait=off" %
                                           sock]),
                             stdout=out, stderr=subprocess.STDOUT)
    verdict = "crash"
    r = None
    try:
        for _ in range(500):
            if os.path.exists(sock):
                break
            time.sleep(0.01)
        r = Rsp(sock, time.monotonic() + timeout)
        r.cmd("qXfer:features:read:target.xml:0,ffb")
        # Into the verify, then the k-th execution of addr (addr None:
        # no skip, the reference boot).
        for bp, hits in ((start, 1), (addr, k)) if addr is not None \
                else ():
            if r.cmd("Z1,%x,2" % bp) != "OK":
                raise OSError("Z1 refused")
            for i in range(hits):
                rep = r.cmd("c")
                if rep[0] in "WX":
                    verdict = "unreached"
                    raise EOFError()
                if i + 1 < hits:
                    # Step over the breakpoint before counting on.
                    r.cmd("z1,%x,2" % bp)
                    r.cmd("s")
                    r.cmd("Z1,%x,2" % bp)
            r.cmd("z1,%x,2" % bp)
        if addr is not None:
            nxt = addr + insn_size(image, addr)
            le = "".join("%02x" % ((nxt >> (8 * i)) & 0xFF)
                         for i in range(4))
            if r.cmd("P f=" + le) != "OK":
                raise OSError("P refused")
        rep = r.cmd("c")
        verdict = {"W00": "authorized", "W01": "refused"}.get(rep[:3],
                                                            "crash")
    except TimeoutError:
        verdict = "hang"
    except (EOFError, OSError):
        pass
    finally:
        if r is not None:
            r.close()
        if q.poll() is None:
            q.kill()
        q.wait()
    with open(outp) as f:
        text = f.read()
    if "device authorized" in text:
        verdict = "authorized"
    elif verdict == "crash" and "UNAUTHORIZED DEVICE" in text:
        # QEMU may close the socket before its exit packet is read.
        verdict = "refused"
    elif verdict == "refused" and "(FAULT)" in text:
        verdict = "fault"
    return verdict, text


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--elf", required=True)
    p.add_argument("--record", required=True)
    p.add_argument("--uid", required=True)
    p.add_argument("--mode", choices=["ci", "full"], default="ci")
    p.add_argument("--sample", type=int, default=200)
    p.add_argument("--seed", type=int, default=17)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--qemu", default="qemu-system-arm")
    p.add_argument("--label", default="")
    a = p.parse_args()

    tmp = tempfile.mkdtemp(prefix="cs-skip-")
    syms = symbols(a.elf)
    image = flash_image(a.elf, tmp)

    t0 = time.monotonic()
    counts = trace(a, syms, tmp)
    total = sum(counts.values())

    ranges = [syms[n] for n in DECISIVE if n in syms]
    # GCC's clones keep their origin's name before a dot.
    for name, r in syms.items():
        if "." in name and name.split(".")[0] in DECISIVE:
            ranges.append(r)

    def decisive(x):
        return any(lo <= x < lo + size for lo, size in ranges)

    dec = sorted(x for x in counts if decisive(x))
    rest = sorted(x for x in counts if not decisive(x))
    if a.mode == "full":
        plan = [(x, k) for x in dec for k in range(1, counts[x] + 1)]
    else:
        # First and last execution of each: a loop's first and last
        # iteration, both runs of a function called twice.
        plan = [(x, k) for x in dec for k in sorted({1, counts[x]})]
    if a.mode == "full":
        other = rest
    else:
        other = sorted(random.Random(a.seed).sample(rest,
                                                    min(a.sample,
                                                        len(rest))))
    plan += [(x, 1) for x in other]

    # The unskipped boot: refused, and how long a boot takes.
    t1 = time.monotonic()
    base, text = skip_one(a, image, None, None, 0, 600, tmp, 0)
    boot_s = time.monotonic() - t1
    if base not in ("refused",):
        sys.exit("skip-campaign: the unskipped boot was %s, not refused:\n%s"
                 % (base, text))
    reason = re.search(r"UNAUTHORIZED DEVICE \((\w+)\)", text)
    timeout = max(3.0, 20 * boot_s)

    results = {}
    lock = threading.Lock()
    slots = list(range(1, a.jobs + 1))

    def work(item):
        with lock:
            n = slots.pop()
        try:
            v, txt = skip_one(a, image, syms["cs_mark_verify_start"][0],
                              item[0], item[1], timeout, tmp, n)
        finally:
            with lock:
                slots.append(n)
        return item, v, txt

    with ThreadPoolExecutor(max_workers=a.jobs) as ex:
        for item, v, txt in ex.map(work, plan):
            results[item] = (v, txt)
            if len(results) % 250 == 0:
                print("skip-campaign: %s %d/%d skips, %.0fs"
                      % (a.label, len(results), len(plan),
                         time.monotonic() - t0), file=sys.stderr)

    tally = {}
    for v, _ in results.values():
        tally[v] = tally.get(v, 0) + 1
    bad = sorted(i for i, (v, _) in results.items() if v == "authorized")
    for x, k in bad:
        name = min((n for n, (lo, sz) in syms.items() if lo <= x < lo + sz),
                   key=len, default="?")
        dis = subprocess.run(
            ["arm-none-eabi-objdump", "-d", "--start-address=0x%x" % x,
             "--stop-address=0x%x" % (x + insn_size(image, x)), a.elf],
            capture_output=True, text=True).stdout.strip().splitlines()
        print("AUTHORIZED: skip of 0x%08x (%s+0x%x) execution %d: %s"
              % (x, name, x - syms[name][0] if name in syms else 0, k,
                 dis[-1].strip() if dis else "?"))
    print("skip-campaign: %s mode=%s verify=%d instructions (%d addresses)"
          " decisive=%d addresses/%d executions others=%d boots=%d"
          " skips=%d authorized=%d refused=%d fault=%d hang=%d crash=%d"
          " unreached=%d baseline=%s boot=%.2fs total=%.0fs"
          % (a.label, a.mode, total, len(counts), len(dec),
             len(plan) - len(other), len(other), len(plan) + 1, len(plan),
             tally.get("authorized", 0), tally.get("refused", 0),
             tally.get("fault", 0), tally.get("hang", 0),
             tally.get("crash", 0), tally.get("unreached", 0),
             reason.group(1) if reason else "?", boot_s,
             time.monotonic() - t0))
    sys.stdout.flush()
    shutil.rmtree(tmp, ignore_errors=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
