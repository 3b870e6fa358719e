"""adlmon: a streaming monitor of autodeleveraging on perpetual-futures venues."""

__version__ = "0.1.0"
