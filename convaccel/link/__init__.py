"""The serial host link, gateware and host side in one place.

- :mod:`.protocol`: the framed request/response protocol (the maximum payload, commands,
  statuses, CRC, the STATUS payload's layout, how beats travel as bytes), one definition for
  everything below; documented in ``docs/protocol.md``.
- :mod:`.uart`: 8N1 receiver and transmitter.
- :mod:`.gateware`: :class:`~.gateware.HostLink` (the engine behind the protocol) and
  :class:`~.gateware.SerialAccelerator` (the same on serial pins), composed of
  :mod:`.framing` (request receiver, response sender, their payload counter),
  :mod:`.decoder` (what a request does and its answer) and :mod:`.dataflow` (packet buffers
  into the engine's beats, result beats into bytes).
- :mod:`.device`: :class:`~.device.Device`, the host driver (pyserial or any byte transport).
- :mod:`.sim` and :mod:`.tb_board`: the board top's serial engine under cocotb, driven by the
  real host driver (``convaccel run --simulate``).
"""
