

def test_message_over_the_limit_closes_with_1009(start_server):
    server = start_server(APP)

    async def main():
        async with connect(ws_url(server), compression=None, max_size=None) as ws:
            await ws.send(b"z" * (17 << 20))
            with pytest.raises(ConnectionClosed) as info:
                await ws.recv()
            return info.value.rcvd

    assert asyncio.run(main()).code == 1009


def test_send_pauses_for_a_client_that_does_not_read(start_server, reports):  # noqa: F811
    server = start_server(APP)

    async def main():
        async with connect(ws_url(server, "/flood"), compression=None, max_queue=1, max_size=None) as ws:
            ws.transport.pause_reading()  # the client's socket buffer fills, then ours
            await asyncio.sleep(1.0)
            sent = read_report(reports, "ws-progress")["sent"]
            await asyncio.sleep(0.5)
            still = read_report(reports, "ws-progress")["sent"]
            ws.transport.resume_reading()
            count = 0
            try:
                while True:
                    await ws.recv()
                    count += 1
            except ConnectionClosed:
                pass
            return sent, still, count

    sent, still, count = asyncio.run(main())
    assert sent < 500, sent  # 2,000 messages of 64 KiB were not all queued
    assert still == sent  # paused
    assert count == 2000
