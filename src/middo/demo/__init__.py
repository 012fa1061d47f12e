"""The bundled demo: a seeded task suite with planted defects, its corpus, and a simulated teacher."""
