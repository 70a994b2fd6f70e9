import conveyor


def test_public_names_are_exactly_these() -> None:
    assert sorted(conveyor.__all__) == [
        "Backoff",
        "Callback",  # workflows
        "ConveyorError",
        "Dedupe",
        "Event",
        "FlowJob",  # workflows
        "Job",
        "JobFailed",
        "JobState",
        "Queue",
        "RateLimit",  # flow control
        "RateLimited",
        "Retry",
        "Settings",
        "SyncQueue",
        "Unrecoverable",
        "Worker",
        "__version__",
    ]
    for name in conveyor.__all__:
        assert getattr(conveyor, name) is not None


def test_every_error_derives_from_one_base() -> None:
    from conveyor import errors

    for name in errors.__all__:
        cls = getattr(errors, name)
        if name in ("Retry", "Unrecoverable"):  # control flow raised by handlers
            assert not issubclass(cls, errors.ConveyorError)
        else:
            assert issubclass(cls, errors.ConveyorError), name
