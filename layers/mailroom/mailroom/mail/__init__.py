"""Pure mail logic: parsing with limits, threading keys, composing, quoting, sanitizing. No I/O."""
