#!/usr/bin/env python3
"""Well-formed DNP3 link-layer frames over TCP (IEEE 1815), for recording a capture.

    dnp3_frames.py serve PORT    answer each frame from the client (one connection)
    dnp3_frames.py client PORT   a master: REQUEST LINK STATUS, then a class 0 read

Frames: 0x05 0x64, length, control, destination and source (little-endian), a CRC-16/DNP
over the header, then user data in blocks of 16 bytes, each followed by its CRC. Only the
Python standard library is used.
"""

import socket
import struct
import sys


def crc_dnp(data):
    crc = 0
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA6BC if crc & 1 else crc >> 1
    return struct.pack("<H", ~crc & 0xFFFF)


def frame(control, dest, src, user=b""):
    head = struct.pack("<BBBBHH", 0x05, 0x64, 5 + len(user), control, dest, src)
    out = head + crc_dnp(head)
    for i in range(0, len(user), 16):
        block = user[i:i + 16]
        out += block + crc_dnp(block)
    return out


def read_frame(s):
    head = b""
    while len(head) < 10:
        chunk = s.recv(10 - len(head))
        if not chunk:
            return None
        head += chunk
    n = head[2] - 5
    body_len = n + 2 * ((n + 15) // 16)
    body = b""
    while len(body) < body_len:
        chunk = s.recv(body_len - len(body))
        if not chunk:
            return None
        body += chunk
    return head + body


MASTER, OUTSTATION = 1, 1024
# Transport header (FIR|FIN, seq 0) + application: READ (0x01) class 0 (group 60 var 1, all).
READ_CLASS0 = bytes([0xC0, 0xC0, 0x01, 0x3C, 0x01, 0x06])
# Response: FIR|FIN, seq 0, RESPONSE (0x81), IIN 0x0000, one binary input (group 1 var 2).
RESPONSE = bytes([0xC0, 0xC0, 0x81, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x81])


def serve(port):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(1)
    while True:
        s, _ = ls.accept()
        while True:
            f = read_frame(s)
            if f is None:
                break
            if f[3] & 0x0F == 0x09:          # REQUEST LINK STATUS -> LINK STATUS
                s.sendall(frame(0x0B, MASTER, OUTSTATION))
            else:                             # user data -> a response
                s.sendall(frame(0x44, MASTER, OUTSTATION, RESPONSE))
        s.close()


def client(port):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(frame(0xC9, OUTSTATION, MASTER))            # REQUEST LINK STATUS
    read_frame(s)
    s.sendall(frame(0xC4, OUTSTATION, MASTER, READ_CLASS0))  # UNCONFIRMED USER DATA
    read_frame(s)
    s.close()


if __name__ == "__main__":
    {"serve": serve, "client": client}[sys.argv[1]](int(sys.argv[2]))
