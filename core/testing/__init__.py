"""Test helpers that ship with tracewire: local fakes of the remote services at the edge."""
