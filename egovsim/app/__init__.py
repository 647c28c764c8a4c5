"""The browser view (Mesa's SolaraViz page) and its offline front end."""
