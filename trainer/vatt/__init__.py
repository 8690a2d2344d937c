"""VATT: self-supervised video-audio-text pretraining (losses, layers) feeding fine-tuning."""
