"""argparse types shared by the `pgcapacity` commands."""

from __future__ import annotations

import argparse


def at_least(minimum: float, kind: type = int, *, exclusive: bool = False):
    """An argparse type: a number of `kind` of at least (or, exclusive, above) `minimum`."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value < minimum or (exclusive and value == minimum):
            bound = "more than" if exclusive else "at least"
            raise argparse.ArgumentTypeError(f"{text}: it must be {bound} {minimum:g}")
        return value

    return parse
