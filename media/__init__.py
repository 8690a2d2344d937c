"""Media decoding (PyAV) and the DMVR record builder, shared by ingestion and the client.

`decode` turns one media file into clips, `dmvr` builds (and reads back) DMVR-layout
SequenceExamples from them, `errors` names why an input was refused, `fs` reads local paths
and buckets alike. Nothing here imports TensorFlow at import time.
"""
