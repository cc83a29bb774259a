"""The serial host link, gateware and host side in one place.

- :mod:`.protocol`: the framed request/response protocol (constants, CRC, STATUS layout, how
  beats travel as bytes), shared by everything below; documented in ``docs/protocol.md``.
- :mod:`.uart`: 8N1 receiver and transmitter.
- :mod:`.gateware`: :class:`~.gateware.HostLink` (the engine behind the protocol) and
  :class:`~.gateware.SerialAccelerator` (the same on serial pins).
- :mod:`.device`: :class:`~.device.Device`, the host driver (pyserial or any byte transport).
- :mod:`.sim` and :mod:`.tb_board`: the board top's serial engine under cocotb, driven by the
  real host driver (``convaccel run --simulate``).
"""
