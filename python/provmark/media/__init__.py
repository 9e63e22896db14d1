"""Media decoding and encoding: the only part of provmark that knows file formats.

Submodules load on use: ``provmark.media.image_io`` (Pillow: PNG, JPEG, WebP, ...), and the audio/video I/O
modules.
"""
