"""The built-in inference engine: it serves only models whose bytes verified.

    >>> import json
    >>> from pathlib import Path
    >>> from attest import KeySigner, TrustAnchors, generate_private_key, sign_model
    >>> from attest.tee.simulated import SimulatedProvider
    >>> from engine.identity import EngineIdentity
    >>> from engine.loader import build_loaded_model
    >>> from engine.verified_load import load_verified
    >>> from policies import shipped_policy
    >>> key = generate_private_key("ecdsa-p256")
    >>> bundle = json.dumps(sign_model(Path("model.gguf"), KeySigner(key)).bundle).encode()   # doctest: +SKIP
    >>> artifact = load_verified(Path("model.gguf"), bundle, TrustAnchors(keys=(key.public_key(),)),
    ...                          shipped_policy("dev"), tee=SimulatedProvider(),
    ...                          identity=EngineIdentity.generate())                           # doctest: +SKIP
    >>> loaded = build_loaded_model(artifact)                                                # doctest: +SKIP

Layers: ``layers`` <- ``models`` <- runtime (``scheduler`` without torch, ``runner`` owning the device,
``llm_engine`` stepping them) <- ``async_engine`` <- ``server``.
"""
