from app import create_app

server = create_app()
