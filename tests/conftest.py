# Import the plugin before anything imports mmrazor: its compatibility layer
# must run first (mmrazor 1.0.0 does not import on torch >= 2.1 without it).
import figkd_mmrazor  # noqa: F401
