"""``DFU_SUFFIX`` without dfu-util: adds, checks or removes the DFU 1.1 suffix (appendix B)
that the OrangeCrab's bootloader expects, as ``dfu-suffix -v VID -p PID -a FILE`` does.

The suffix is bcdDevice, idProduct, idVendor, bcdDFU (little-endian 16-bit each), ``b"UFD"``,
its length (16) and the CRC-32 of the file and the first 12 suffix bytes, inverted.
"""

import argparse
import struct
import sys
import zlib

__all__ = ["add_suffix", "main", "parse_suffix"]


def _crc(data):
    return ~zlib.crc32(data) & 0xFFFFFFFF


def parse_suffix(data):
    """The suffix of `data` as a dict (``crc_ok`` tells whether it is intact), or None."""
    if len(data) < 16 or data[-8:-5] != b"UFD":
        return None
    did, pid, vid, bcd = struct.unpack("<HHHH", data[-16:-8])
    (crc,) = struct.unpack("<I", data[-4:])
    return {"did": did, "pid": pid, "vid": vid, "bcd_dfu": bcd, "length": data[-5],
            "crc": crc, "crc_ok": crc == _crc(data[:-4])}


def add_suffix(data, *, vid=0xFFFF, pid=0xFFFF, did=0xFFFF, bcd_dfu=0x0100):
    """`data` with a DFU suffix appended."""
    body = data + struct.pack("<HHHH", did, pid, vid, bcd_dfu) + b"UFD" + bytes([16])
    return body + struct.pack("<I", _crc(body))


def main(argv=None):
    parser = argparse.ArgumentParser(prog="dfu-suffix")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("-a", "--add", metavar="FILE")
    mode.add_argument("-c", "--check", metavar="FILE")
    mode.add_argument("-D", "--delete", metavar="FILE")
    for short, long in (("-v", "--vid"), ("-p", "--pid"), ("-d", "--did")):
        parser.add_argument(short, long, type=lambda s: int(s, 16), default=0xFFFF)
    parser.add_argument("-S", "--spec", type=lambda s: int(s, 16), default=0x0100)
    args = parser.parse_args(argv)
    path = args.add or args.check or args.delete
    with open(path, "rb") as f:
        data = f.read()
    existing = parse_suffix(data)
    if args.check:
        print(f"{path}: {existing or 'no DFU suffix'}")
        return 0 if existing and existing["crc_ok"] else 1
    if args.delete:
        if existing is None:
            print(f"{path}: no DFU suffix to remove", file=sys.stderr)
            return 1
        data = data[:-existing["length"]]
    else:
        if existing is not None:
            print(f"{path}: already has a DFU suffix; remove it first (-D)", file=sys.stderr)
            return 1
        data = add_suffix(data, vid=args.vid, pid=args.pid, did=args.did, bcd_dfu=args.spec)
    with open(path, "wb") as f:
        f.write(data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
