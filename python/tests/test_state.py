"""States: new, copy, reset, assign, bytes and file round trips, the NumPy view."""

import copy

import pytest

np = pytest.importorskip("numpy")

PROMPT = [84, 104, 101, 32, 80, 121]  # "The Py"
NEXT = [116, 104, 111, 110]  # "thon"


def continuation(model, state):
    """Logits of feeding NEXT one token at a time from `state` (a copy)."""
    state = state.copy()
    rows = []
    for t in NEXT:
        logits, state = model.forward(t, state)
        rows.append(logits)
    return np.stack(rows)


def test_new_state_shape_and_initial_values(tiny_v7, tiny_v4):
    state = tiny_v7.new_state()
    assert len(state) == state.size == tiny_v7.state_size
    assert not state.numpy().any()  # v7 starts from zeros
    v4 = tiny_v4.new_state().numpy()
    assert v4.min() <= -1e29  # v4's pp starts at -1e30
    assert tiny_v4.n_head == 0 and tiny_v4.head_size == 0


def test_forward_advances_a_given_state_in_place(tiny_v7):
    state = tiny_v7.new_state()
    logits, returned = tiny_v7.forward(PROMPT, state)
    assert returned is state
    assert state.numpy().any()
    fresh_logits, fresh_state = tiny_v7.forward(PROMPT, None)
    assert fresh_state is not state
    assert np.array_equal(fresh_logits, logits)
    assert np.array_equal(fresh_state.numpy(), state.numpy())


def test_copy_is_independent(tiny_v7):
    _, state = tiny_v7.forward(PROMPT, None)
    clone = state.copy()
    before = clone.numpy().copy()
    tiny_v7.forward(NEXT, state)
    assert np.array_equal(clone.numpy(), before)
    assert not np.array_equal(state.numpy(), before)
    for other in (copy.copy(clone), copy.deepcopy(clone)):
        assert other is not clone and np.array_equal(other.numpy(), before)


def test_reset_and_assign(tiny_v7):
    _, state = tiny_v7.forward(PROMPT, None)
    saved = state.copy()
    state.reset()
    assert not state.numpy().any()
    state.assign(saved)
    assert np.array_equal(state.numpy(), saved.numpy())
    assert np.array_equal(continuation(tiny_v7, state), continuation(tiny_v7, saved))


def test_bytes_round_trip_continues_exactly(tiny_v7):
    _, state = tiny_v7.forward(PROMPT, None)
    data = state.to_bytes()
    assert isinstance(data, bytes) and len(data) > 4 * len(state)
    restored = type(state).from_bytes(tiny_v7, data)
    assert np.array_equal(restored.numpy(), state.numpy())
    assert np.array_equal(continuation(tiny_v7, restored), continuation(tiny_v7, state))
    assert type(state).from_bytes(tiny_v7, bytearray(data)).to_bytes() == data


def test_file_round_trip_into_a_freshly_loaded_model(engine, tiny_v7, tmp_path):
    _, state = tiny_v7.forward(PROMPT, None)
    path = tmp_path / "s.state"
    state.save(path)
    reloaded_model = engine.Model(tiny_v7.path)
    restored = reloaded_model.load_state(path)
    assert restored.model is reloaded_model
    assert np.array_equal(restored.numpy(), state.numpy())
    assert np.array_equal(continuation(reloaded_model, restored), continuation(tiny_v7, state))
    assert engine.State.load(tiny_v7, str(path)).to_bytes() == state.to_bytes()
    assert path.read_bytes() == state.to_bytes()


def test_numpy_view_writes_through(tiny_v7):
    _, state = tiny_v7.forward(PROMPT, None)
    view = state.numpy()
    assert view.dtype == np.float32 and view.shape == (len(state),)
    original = view.copy()
    expected = continuation(tiny_v7, state)
    view[:] = 0
    assert not state.copy().numpy().any()
    assert np.array_equal(continuation(tiny_v7, state), continuation(tiny_v7, tiny_v7.new_state()))
    view[:] = original
    assert np.array_equal(continuation(tiny_v7, state), expected)


def test_numpy_view_keeps_the_state_alive(tiny_v7):
    _, state = tiny_v7.forward(PROMPT, None)
    expected = state.numpy().copy()
    view = state.numpy()
    del state
    assert np.array_equal(view, expected)


def test_list_access(tiny_v7):
    _, state = tiny_v7.forward(PROMPT, None)
    values = state.tolist()
    assert isinstance(values, list) and len(values) == len(state)
    assert values == state.numpy().tolist()
    other = tiny_v7.new_state().set_data(values)
    assert np.array_equal(other.numpy(), state.numpy())
    assert isinstance(state.data, np.ndarray)


def test_state_outlives_its_model(engine, tiny_v7):
    model = engine.Model(tiny_v7.path)
    _, state = model.forward(PROMPT, None)
    model.close()
    with pytest.raises(engine.RwkvError, match="closed"):
        model.forward(NEXT, state)
    clone = state.copy()  # the library keeps the model's part a state needs
    expected = continuation(tiny_v7, tiny_v7.forward(PROMPT, None)[1])
    assert np.array_equal(continuation(tiny_v7, engine.State.from_bytes(tiny_v7, clone.to_bytes())), expected)


def test_threads_share_a_model(tiny_v7):
    """A model serves several Python threads at once (ctypes releases the GIL), each with
    its own state."""
    import threading

    expected = continuation(tiny_v7, tiny_v7.forward(PROMPT, None)[1])
    results = [None] * 4

    def work(i):
        results[i] = continuation(tiny_v7, tiny_v7.forward(PROMPT, None)[1])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(results))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r is not None and np.array_equal(r, expected) for r in results)
