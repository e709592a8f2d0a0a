"""The web trace viewer (`tracewire ui`): server-rendered pages over the local store, standard library only."""
