from conveyor import Job, JobState


def test_job_from_fields_reads_every_field() -> None:
    job = Job.from_fields(
        "7",
        "email",
        {
            "name": "send",
            "data": '{"to":"a@b.c"}',
            "opts": '{"timeout":5,"backoff":{"kind":"fixed","delay":2}}',
            "state": "failed",
            "attempts": "3",
            "made": "3",
            "error": "boom",
            "created": "1000",
            "result": "null",
        },
    )
    assert job.data == {"to": "a@b.c"}
    assert job.state is JobState.FAILED
    assert job.timeout == 5
    assert job.backoff is not None and job.backoff.delay == 2
    assert (job.attempts, job.attempts_made, job.error, job.created_at) == (3, 3, "boom", 1000)
    assert job.decode_error is None
    assert job.to_dict()["state"] == "failed"


def test_garbage_in_a_job_hash_is_reported_not_raised() -> None:
    job = Job.from_fields("1", "q", {"data": "{not json", "state": "weird", "opts": "[1]"})
    assert job.decode_error is not None
    for part in ("'data' is not valid JSON", "unknown state 'weird'", "'name' is missing"):
        assert part in job.decode_error


def test_a_fetched_job_whose_defaults_were_not_stored_reads_them_as_defaults() -> None:
    # add_job leaves out opts, attempts and priority at their defaults; fetch.lua hands out nil.
    raw = ["7", "3@w", "send", '{"to": "a"}', None, None, None, None, None, "1700000000000", None]
    job = Job.from_fetch("mail", raw, None)
    assert job.decode_error is None
    assert (job.attempts, job.priority, job.attempts_made, job.stalls) == (1, 0, 0, 0)
    assert job.options() == {
        "attempts": 1,
        "backoff": None,
        "timeout": None,
        "ttl": None,
        "priority": 0,
    }
    assert (job.data, job.state, job.token) == ({"to": "a"}, JobState.ACTIVE, "3@w")
