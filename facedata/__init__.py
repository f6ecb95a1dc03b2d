"""Faces and photos with their truth, for training and for measuring: below both ``train``
and ``edge.measure``, above the edge runtime's contract modules.

- ``masks``: put a face mask of any kind, colour or pattern on an unmasked face.
"""
