"""Helpers shared by the test folders, each built on the production code it stands next to:

configs   tiny configs: plain data through core.config.apply_overrides and from_dict
records   DMVR records: media.dmvr.build_sequence_example, gzip TFRecords, Examples layout
media     tiny media files: demo/writers.py, plus the few formats the demo never writes
inputs    the input-pipeline tests' tiny core.config.Inputs and one task per modality
"""
