"""Everything that knows how jobs are laid out in Redis: key names, Lua scripts, commands."""
