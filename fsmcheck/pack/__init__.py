"""The runtime of generated conformance packs.

Generated modules (``fsmcheck generate``) hold the data derived from a
verified model -- the arc tour, every (current, requested) pair, the
rejections, the W-method sequences -- and call these helpers, which drive a
device through the adapter contract and report every deviation as a
protocol violation with the sequence of operations from open.
"""
