"""Observation: what the kernel tells the outside world about its jobs.

* :mod:`.events` - the events (``RunStarted``, ``RunFailed``, ...), frozen structs;
* :mod:`.metrics` - Prometheus metrics, a listener of those events (the exposition text
  is written by :mod:`._exposition`, in slices that give the loop back);
* :mod:`.logs` - log formats, secret redaction in logs, one line per event;
* :mod:`.redaction` - masking credentials in text;
* :mod:`.failures` - failure records (a failed run, retryable) and their stores.

Import them by their public paths (``kernel.events``, ``kernel.metrics``, ...).
"""

from __future__ import annotations

__all__ = ()
