"""Settings of one camera source (timeouts, reconnect policy, pacing) and its reconnect backoff.

`SourceOptions` is a pydantic section like the rest of the configuration: unknown keys are
rejected, each field is described and bounded. `Backoff` is the pure reconnect policy:
exponential growth from `backoff_initial_s` to `backoff_max_s` with random jitter, so that
many cameras behind one failed switch do not all retry in the same instant.
"""

from __future__ import annotations

import random
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class SourceOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rtsp_transport: Literal["tcp", "udp"] = Field(
        "tcp", description="RTSP transport: tcp (interleaved, robust through NAT) or udp (lower latency)."
    )
    open_timeout_s: float = Field(
        5.0, description="Seconds allowed to open a stream before the attempt fails.", gt=0, le=120
    )
    read_timeout_s: float = Field(
        5.0, description="Seconds without data after which a connected stream counts as lost.", gt=0, le=120
    )
    backoff_initial_s: float = Field(
        0.5, description="First delay before reconnecting after a failure, seconds.", gt=0, le=60
    )
    backoff_max_s: float = Field(
        30.0, description="Longest delay between reconnect attempts, seconds.", gt=0, le=3600
    )
    backoff_multiplier: float = Field(
        2.0, description="Growth factor of the delay after each failure.", ge=1, le=10
    )
    backoff_jitter: float = Field(
        0.3,
        description="Random fraction taken off each delay (0: none; 0.3: the delay is 70-100% of nominal).",
        ge=0,
        le=1,
    )
    realtime: bool = Field(
        True,
        description="Pace files at their native frame rate like a live camera (false: decode as fast as possible).",
    )
    lossless: bool = Field(
        False,
        description="Files only: wait for the analysis to take each due frame instead of dropping it "
        "(batch analysis of recordings, benchmarks). Live streams always keep the latest frame.",
    )
    loop: bool = Field(
        True,
        description="Start a file again from the beginning when it ends (false: play it once, then stay offline).",
    )
    decode_threads: int = Field(
        1,
        description="Decoder threads per camera (0: FFmpeg chooses). One keeps many cameras per process cheap.",
        ge=0,
        le=64,
    )
    health_window_s: float = Field(
        5.0,
        description="Window over which frame rates and recent decode errors are measured, seconds.",
        gt=0,
        le=600,
    )
    degraded_fps_ratio: float = Field(
        0.5,
        description="A connected camera whose input rate falls below this fraction of its nominal rate is degraded.",
        ge=0,
        le=1,
    )
    notice_hold_s: float = Field(
        60.0,
        description="How long a notice (a resolution change) stays in the health message, seconds.",
        ge=0,
        le=86400,
    )

    @model_validator(mode="after")
    def _backoff_order(self) -> SourceOptions:
        if self.backoff_max_s < self.backoff_initial_s:
            raise ValueError(
                f"backoff_max_s ({self.backoff_max_s}) must be >= backoff_initial_s ({self.backoff_initial_s})"
            )
        return self


class Backoff:
    """Delays between reconnect attempts: initial * multiplier**n, capped, minus random jitter."""

    def __init__(
        self,
        initial_s: float,
        max_s: float,
        *,
        multiplier: float = 2.0,
        jitter: float = 0.3,
        rng: random.Random | None = None,
    ) -> None:
        if initial_s <= 0 or max_s < initial_s or multiplier < 1 or not 0 <= jitter <= 1:
            raise ValueError(
                f"invalid backoff: initial={initial_s} max={max_s} multiplier={multiplier} jitter={jitter}"
            )
        self.initial_s = initial_s
        self.max_s = max_s
        self.multiplier = multiplier
        self.jitter = jitter
        self._rng = rng or random.Random()
        self._failures = 0

    @classmethod
    def from_options(cls, options: SourceOptions, rng: random.Random | None = None) -> Backoff:
        return cls(
            options.backoff_initial_s,
            options.backoff_max_s,
            multiplier=options.backoff_multiplier,
            jitter=options.backoff_jitter,
            rng=rng,
        )

    @property
    def failures(self) -> int:
        """Consecutive failures since the last reset."""
        return self._failures

    def nominal(self, failures: int) -> float:
        """The delay before jitter after `failures` consecutive failures (>= 1)."""
        exponent = max(0, failures - 1)
        # Cap the exponent so that a camera down for days does not overflow a float.
        delay = self.initial_s * self.multiplier ** min(exponent, 64)
        return min(self.max_s, delay)

    def next_delay(self) -> float:
        """Record one more failure and return how long to wait before the next attempt."""
        self._failures += 1
        nominal = self.nominal(self._failures)
        return nominal * (1.0 - self.jitter * self._rng.random())

    def reset(self) -> None:
        """A connection worked: the next failure starts again from the initial delay."""
        self._failures = 0
