"""Test helpers behind the conftest fixtures: video files with painted frame indices
(`videos`) and a local Hugging Face Hub server (`hub_server`)."""
