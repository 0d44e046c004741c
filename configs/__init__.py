"""The shipped run configs (``*.yaml``) and sweep files (``sweeps/*.yaml``), installed as ``noisyfer.configs``.

``noisyfer train ce_sim`` finds ``ce_sim.yaml`` here (:func:`noisyfer.config.find_config`). A new file
dropped into this folder is shipped with nothing else to edit.
"""
