"""The shared contract: what training, export, the runtime and the measuring tools must
agree on, each said once.

- ``crop``: the one face-crop rule, and the resize to the model's input;
- ``boxes``: boxes, their overlap, and one-to-one matching by it;
- ``card``: ``card.json``, the contract between export and the edge;
- ``classifier``: a TFLite file run on face crops — on the Pi and in export's parity gate;
- ``images``: reading an image file safely;
- ``params``: declaring settings (type, default, range, help) and checking them.

These import nothing else of the project (``tests/test_layers.py`` holds them to it).
"""
