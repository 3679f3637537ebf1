"""The FastAPI docs' WebSocket ConnectionManager, with a POST /broadcast.

https://fastapi.tiangolo.com/advanced/websockets/#handling-disconnections-and-multiple-clients
(the seeds' stack). Run: uvicorn app:app --host 127.0.0.1 --port 18081
"""

from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect

app = FastAPI()


class ConnectionManager:
    def __init__(self):
        self.active_connections: list[WebSocket] = []

    async def connect(self, websocket: WebSocket):
        await websocket.accept()
        self.active_connections.append(websocket)

    def disconnect(self, websocket: WebSocket):
        self.active_connections.remove(websocket)

    async def broadcast(self, message: str):
        for connection in self.active_connections:
            await connection.send_text(message)


manager = ConnectionManager()


@app.websocket("/ws")
async def websocket_endpoint(websocket: WebSocket):
    await manager.connect(websocket)
    try:
        while True:
            await websocket.receive_text()
    except WebSocketDisconnect:
        manager.disconnect(websocket)


@app.post("/broadcast", status_code=202)
async def broadcast(request: Request):
    body = (await request.body()).decode()
    await manager.broadcast(body)
    return {"sent": True}
