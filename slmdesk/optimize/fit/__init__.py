"""Make it fit: search quantization choices for the smallest or best model that meets a target.

`target` parses what the user asks for, `space` lists the candidates, `search` decides which to
build, `front` keeps the measured size-versus-KLD front and explains the winner, `run` is the
parent's side of a whole run (one worker child, then the library). No Qt here.
"""
