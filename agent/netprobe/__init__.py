"""Network segmentation probes, run by agents on plans the collector assigns."""
