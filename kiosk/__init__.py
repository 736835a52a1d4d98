"""kiosk: an edge daemon for in-store shelf analytics.

Data flows one way: camera -> vision -> tracking -> visits/aggregate -> store -> publish.
"""

__version__ = "0.2.0"
