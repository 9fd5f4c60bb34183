"""A local fake exchange for tests and the demo.

Binance spot and the P2P books of Binance, OKX and Bybit, in their exact formats, on loopback.
"""
