"""`polyvit make-demo-data`: the built-in demo media, deterministic from a seed.

Four datasets over three modalities, laid out as `configs/demo.yaml` expects them:
  digits/<label>/*.png|jpg                         images (scikit-learn's handwritten digits)
  motion/{train,val}/<direction>/*.mp4             H.264 clips, class = direction of motion
  dtmf/{train,eval}.csv + dtmf/audio/*.wav|flac    DMVR-style CSV, class = keypad key
  tone_mix/*.csv + tone_mix/audio/<YTID>.flac|wav  AudioSet-style, multi-label
plus `manifest.json`, which describes every file. Sizes and media parameters: presets.py.
"""
