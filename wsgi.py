from app import create_app
from app.server import settled

server = settled(create_app())
