"""Imported first by the forkserver (`_process_context` preloads it): Ctrl-C reaches every process of the
terminal's process group, and the forkserver would otherwise print a traceback if it arrived while it is still
importing the model. The command itself handles Ctrl-C and stops its workers (ProcessPool.stop); the workers
forked from here keep this setting (and their initializer sets it again)."""

import signal

signal.signal(signal.SIGINT, signal.SIG_IGN)
