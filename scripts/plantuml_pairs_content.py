"""The scenarios behind src/genfoundry/data/diagrams/plantuml_pairs*.jsonl, written by hand, one per line.

TRAIN and HELDOUT use different scenarios (no title, and no set of names, is shared), so the held-out split
measures generation for scenarios a model has not seen. Spec forms are documented in plantuml_pairs_render.py.
"""

from __future__ import annotations

from typing import Any

TRAIN: dict[str, list[Any]] = {
    "sequence": [
        (
            "an online checkout",
            ["Customer*", "WebShop", "PaymentService"],
            [
                "Customer > WebShop: place order",
                "WebShop > PaymentService: charge card",
                "PaymentService >> WebShop: payment approved",
                "WebShop >> Customer: order confirmed",
            ],
        ),
        (
            "a user login",
            ["User*", "LoginPage", "AuthService"],
            [
                "User > LoginPage: enter credentials",
                "LoginPage > AuthService: verify password",
                "AuthService >> LoginPage: token",
                "LoginPage >> User: welcome page",
            ],
        ),
        (
            "booking a hotel room",
            ["Guest*", "BookingSite", "Hotel"],
            [
                "Guest > BookingSite: search rooms",
                "BookingSite > Hotel: check availability",
                "Hotel >> BookingSite: free rooms",
                "Guest > BookingSite: book room",
                "BookingSite >> Guest: booking number",
            ],
        ),
        (
            "withdrawing cash at an ATM",
            ["Customer*", "ATM", "Bank"],
            [
                "Customer > ATM: insert card",
                "ATM > Bank: check PIN",
                "Bank >> ATM: PIN valid",
                "Customer > ATM: request 100 euros",
                "ATM >> Customer: cash",
            ],
        ),
        (
            "ordering food in an app",
            ["Diner*", "FoodApp", "Restaurant", "Courier"],
            [
                "Diner > FoodApp: order pizza",
                "FoodApp > Restaurant: new order",
                "Restaurant > Courier: pickup ready",
                "Courier >> Diner: food delivered",
            ],
        ),
        (
            "resetting a password",
            ["User*", "Website", "EmailService"],
            [
                "User > Website: forgot password",
                "Website > EmailService: send reset link",
                "EmailService >> User: reset email",
                "User > Website: new password",
                "Website >> User: password changed",
            ],
        ),
        (
            "a video stream starting",
            ["Viewer*", "Player", "CDN"],
            [
                "Viewer > Player: press play",
                "Player > CDN: request segment",
                "CDN >> Player: video segment",
                "Player >> Viewer: playback starts",
            ],
        ),
        (
            "checking out a library book",
            ["Member*", "Librarian", "Catalog"],
            [
                "Member > Librarian: borrow book",
                "Librarian > Catalog: mark as lent",
                "Catalog >> Librarian: due date",
                "Librarian >> Member: book and due date",
            ],
        ),
        (
            "a ride request",
            ["Rider*", "RideApp", "Driver"],
            [
                "Rider > RideApp: request ride",
                "RideApp > Driver: offer trip",
                "Driver >> RideApp: accept",
                "RideApp >> Rider: driver on the way",
            ],
        ),
        (
            "sending a chat message",
            ["Alice*", "ChatServer", "Bob*"],
            [
                "Alice > ChatServer: send message",
                "ChatServer > Bob: deliver message",
                "Bob >> ChatServer: read receipt",
                "ChatServer >> Alice: message read",
            ],
        ),
        (
            "an API request with caching",
            ["Client", "Gateway", "Cache", "Backend"],
            [
                "Client > Gateway: GET /items",
                "Gateway > Cache: lookup",
                "Cache >> Gateway: miss",
                "Gateway > Backend: fetch items",
                "Backend >> Gateway: items",
                "Gateway >> Client: 200 OK",
            ],
        ),
        (
            "a doctor appointment booking",
            ["Patient*", "Clinic", "Calendar"],
            [
                "Patient > Clinic: ask for appointment",
                "Clinic > Calendar: find free slot",
                "Calendar >> Clinic: Tuesday 10:00",
                "Clinic >> Patient: appointment confirmed",
            ],
        ),
        (
            "paying a bill online",
            ["Customer*", "BankApp", "Biller"],
            [
                "Customer > BankApp: pay bill",
                "BankApp > Biller: transfer amount",
                "Biller >> BankApp: receipt",
                "BankApp >> Customer: payment done",
            ],
        ),
        (
            "a file upload",
            ["User*", "Browser", "UploadService", "Storage"],
            [
                "User > Browser: choose file",
                "Browser > UploadService: upload file",
                "UploadService > Storage: save file",
                "Storage >> UploadService: file id",
                "UploadService >> Browser: upload complete",
            ],
        ),
        (
            "a two factor login",
            ["User*", "App", "AuthServer", "Phone"],
            [
                "User > App: log in",
                "App > AuthServer: check password",
                "AuthServer > Phone: send code",
                "User > App: enter code",
                "App > AuthServer: verify code",
                "AuthServer >> App: access granted",
            ],
        ),
        (
            "buying a concert ticket",
            ["Fan*", "TicketShop", "SeatService"],
            [
                "Fan > TicketShop: pick concert",
                "TicketShop > SeatService: reserve seat",
                "SeatService >> TicketShop: seat 12A",
                "TicketShop >> Fan: e-ticket",
            ],
        ),
        (
            "a smart thermostat update",
            ["Thermostat", "HomeHub", "WeatherService"],
            [
                "Thermostat > HomeHub: current temperature",
                "HomeHub > WeatherService: get forecast",
                "WeatherService >> HomeHub: cold night",
                "HomeHub >> Thermostat: raise heating",
            ],
        ),
        (
            "an order refund",
            ["Customer*", "SupportDesk", "Billing"],
            [
                "Customer > SupportDesk: request refund",
                "SupportDesk > Billing: refund order",
                "Billing >> SupportDesk: refund issued",
                "SupportDesk >> Customer: refund confirmation",
            ],
        ),
        (
            "publishing a blog post",
            ["Author*", "Editor", "CMS"],
            [
                "Author > CMS: submit draft",
                "CMS > Editor: review request",
                "Editor >> CMS: approve",
                "CMS >> Author: post published",
            ],
        ),
        (
            "a job application",
            ["Applicant*", "CareersSite", "Recruiter"],
            [
                "Applicant > CareersSite: upload resume",
                "CareersSite > Recruiter: new application",
                "Recruiter >> CareersSite: invite to interview",
                "CareersSite >> Applicant: interview invitation",
            ],
        ),
        (
            "adding an item to a cart",
            ["Shopper*", "ProductPage", "CartService"],
            [
                "Shopper > ProductPage: click add to cart",
                "ProductPage > CartService: add item",
                "CartService >> ProductPage: cart total",
                "ProductPage >> Shopper: item added",
            ],
        ),
        (
            "a parcel tracking query",
            ["Customer*", "TrackingPage", "Carrier"],
            [
                "Customer > TrackingPage: enter tracking number",
                "TrackingPage > Carrier: get status",
                "Carrier >> TrackingPage: out for delivery",
                "TrackingPage >> Customer: show status",
            ],
        ),
        (
            "a print job",
            ["User*", "Laptop", "PrintServer", "Printer"],
            [
                "User > Laptop: print document",
                "Laptop > PrintServer: queue job",
                "PrintServer > Printer: print pages",
                "Printer >> PrintServer: done",
                "PrintServer >> Laptop: job finished",
            ],
        ),
        (
            "a car rental pickup",
            ["Driver*", "RentalDesk", "Fleet"],
            [
                "Driver > RentalDesk: show reservation",
                "RentalDesk > Fleet: assign car",
                "Fleet >> RentalDesk: car keys",
                "RentalDesk >> Driver: keys and contract",
            ],
        ),
        (
            "a newsletter signup",
            ["Visitor*", "SignupForm", "MailingList"],
            [
                "Visitor > SignupForm: enter email",
                "SignupForm > MailingList: add subscriber",
                "MailingList >> Visitor: confirmation email",
            ],
        ),
        (
            "a search query",
            ["User*", "SearchBox", "SearchEngine", "Index"],
            [
                "User > SearchBox: type query",
                "SearchBox > SearchEngine: search",
                "SearchEngine > Index: look up terms",
                "Index >> SearchEngine: matching pages",
                "SearchEngine >> SearchBox: ranked results",
            ],
        ),
        (
            "a restaurant table reservation",
            ["Guest*", "Host", "TablePlanner"],
            [
                "Guest > Host: table for four",
                "Host > TablePlanner: find table",
                "TablePlanner >> Host: table 7 at 8 pm",
                "Host >> Guest: reservation made",
            ],
        ),
        (
            "a payment with fraud check",
            ["Shop", "PaymentGateway", "FraudService", "Bank"],
            [
                "Shop > PaymentGateway: authorize payment",
                "PaymentGateway > FraudService: score transaction",
                "FraudService >> PaymentGateway: low risk",
                "PaymentGateway > Bank: charge card",
                "Bank >> PaymentGateway: approved",
                "PaymentGateway >> Shop: authorized",
            ],
        ),
        (
            "a software update",
            ["Phone", "UpdateServer"],
            [
                "Phone > UpdateServer: check for updates",
                "UpdateServer >> Phone: version 2.1 available",
                "Phone > UpdateServer: download update",
                "UpdateServer >> Phone: update package",
            ],
        ),
        (
            "a pizza order by phone",
            ["Customer*", "Cashier", "Kitchen"],
            [
                "Customer > Cashier: order margherita",
                "Cashier > Kitchen: bake margherita",
                "Kitchen >> Cashier: pizza ready",
                "Cashier >> Customer: pizza and bill",
            ],
        ),
        (
            "a grade lookup",
            ["Student*", "Portal", "GradeService"],
            [
                "Student > Portal: open grades",
                "Portal > GradeService: get grades",
                "GradeService >> Portal: grade list",
                "Portal >> Student: show grades",
            ],
        ),
        (
            "a support chat with a bot",
            ["Customer*", "ChatBot", "Agent*"],
            [
                "Customer > ChatBot: my order is late",
                "ChatBot > Agent: hand over chat",
                "Agent >> Customer: new delivery date",
            ],
        ),
        (
            "a webhook delivery",
            ["PaymentProvider", "WebhookEndpoint", "OrderService"],
            [
                "PaymentProvider > WebhookEndpoint: payment succeeded",
                "WebhookEndpoint > OrderService: mark order paid",
                "OrderService >> WebhookEndpoint: ok",
                "WebhookEndpoint >> PaymentProvider: 200 OK",
            ],
        ),
        (
            "a gym check-in",
            ["Member*", "Turnstile", "MemberService"],
            [
                "Member > Turnstile: scan card",
                "Turnstile > MemberService: check membership",
                "MemberService >> Turnstile: active",
                "Turnstile >> Member: gate opens",
            ],
        ),
        (
            "a library e-book loan",
            ["Reader*", "LibraryApp", "LicenseServer"],
            [
                "Reader > LibraryApp: borrow e-book",
                "LibraryApp > LicenseServer: request license",
                "LicenseServer >> LibraryApp: 14 day license",
                "LibraryApp >> Reader: e-book ready",
            ],
        ),
        (
            "a bus ticket purchase",
            ["Passenger*", "TicketMachine", "PaymentTerminal"],
            [
                "Passenger > TicketMachine: choose day pass",
                "TicketMachine > PaymentTerminal: charge 7 euros",
                "PaymentTerminal >> TicketMachine: paid",
                "TicketMachine >> Passenger: day pass",
            ],
        ),
        (
            "a cloud backup",
            ["Laptop", "BackupAgent", "CloudStorage"],
            [
                "Laptop > BackupAgent: files changed",
                "BackupAgent > CloudStorage: upload changes",
                "CloudStorage >> BackupAgent: stored",
                "BackupAgent >> Laptop: backup complete",
            ],
        ),
        (
            "a loyalty points redemption",
            ["Customer*", "LoyaltyApp", "PointsService"],
            [
                "Customer > LoyaltyApp: redeem 500 points",
                "LoyaltyApp > PointsService: deduct points",
                "PointsService >> LoyaltyApp: new balance",
                "LoyaltyApp >> Customer: voucher code",
            ],
        ),
        (
            "a meeting invitation",
            ["Organizer*", "CalendarApp", "Attendee*"],
            [
                "Organizer > CalendarApp: create meeting",
                "CalendarApp > Attendee: send invitation",
                "Attendee >> CalendarApp: accept",
                "CalendarApp >> Organizer: attendee accepted",
            ],
        ),
        (
            "a delivery drone order",
            ["Customer*", "ShopApp", "DroneControl", "Drone"],
            [
                "Customer > ShopApp: order medicine",
                "ShopApp > DroneControl: schedule flight",
                "DroneControl > Drone: fly to address",
                "Drone >> Customer: package dropped",
            ],
        ),
    ],
    "class": [
        (
            "a library",
            [
                "Library: name String; addBook, findBook",
                "Book: title String, isbn String",
                "Member: name String; borrow",
            ],
            ["Library o-- Book", "Member --> Book: borrows"],
        ),
        (
            "shapes",
            ["Shape: color String; area", "Circle: radius float", "Rectangle: width float, height float"],
            ["Shape <|-- Circle", "Shape <|-- Rectangle"],
        ),
        (
            "an online shop",
            [
                "Customer: name String, email String",
                "Order: date Date, total float; addItem",
                "OrderLine: quantity int",
            ],
            ["Order *-- OrderLine", "Customer --> Order: places"],
        ),
        (
            "a bank",
            [
                "Account: number String, balance float; deposit, withdraw",
                "SavingsAccount: rate float",
                "CheckingAccount: overdraft float",
            ],
            ["Account <|-- SavingsAccount", "Account <|-- CheckingAccount"],
        ),
        (
            "a school",
            [
                "School: name String",
                "Classroom: number int",
                "Teacher: name String; teach",
                "Student: name String, grade int",
            ],
            ["School *-- Classroom", "Teacher --> Classroom: teaches in", "Classroom o-- Student"],
        ),
        (
            "vehicles",
            ["Vehicle: brand String, speed int; drive", "Car: doors int", "Truck: load float", "Bike"],
            ["Vehicle <|-- Car", "Vehicle <|-- Truck", "Vehicle <|-- Bike"],
        ),
        (
            "a music player",
            ["Playlist: name String; play, shuffle", "Song: title String, length int", "Artist: name String"],
            ["Playlist o-- Song", "Song --> Artist: performed by"],
        ),
        (
            "a hospital",
            [
                "Hospital: name String",
                "Ward: name String",
                "Doctor: name String; examine",
                "Patient: name String, age int",
            ],
            ["Hospital *-- Ward", "Ward o-- Patient", "Doctor --> Patient: treats"],
        ),
        (
            "animals in a zoo",
            [
                "Animal: name String, age int; eat",
                "Lion: maneLength float",
                "Penguin: canSwim boolean",
                "Zoo: city String",
            ],
            ["Animal <|-- Lion", "Animal <|-- Penguin", "Zoo o-- Animal"],
        ),
        (
            "a blog",
            [
                "Blog: title String",
                "Post: title String, body String; publish",
                "Comment: text String",
                "Author: name String",
            ],
            ["Blog o-- Post", "Post *-- Comment", "Author --> Post: writes"],
        ),
        (
            "employees",
            [
                "Employee: name String, salary float; work",
                "Manager: bonus float",
                "Engineer: level int",
                "Department: name String",
            ],
            ["Employee <|-- Manager", "Employee <|-- Engineer", "Department o-- Employee"],
        ),
        (
            "a car",
            ["Car: model String; start", "Engine: power int", "Wheel: size int", "Driver: name String"],
            ["Car *-- Engine", "Car *-- Wheel", "Driver --> Car: drives"],
        ),
        (
            "a file system",
            ["Node: name String; size", "File: bytes int", "Folder; list", "Disk: capacity int"],
            ["Node <|-- File", "Node <|-- Folder", "Folder o-- Node", "Disk *-- Folder"],
        ),
        (
            "payments",
            [
                "Payment: amount float; pay",
                "CardPayment: cardNumber String",
                "CashPayment: received float",
                "Invoice: number String",
            ],
            ["Payment <|-- CardPayment", "Payment <|-- CashPayment", "Invoice --> Payment: paid by"],
        ),
        (
            "a restaurant",
            [
                "Restaurant: name String",
                "Menu; addDish",
                "Dish: name String, price float",
                "Waiter: name String; serve",
            ],
            ["Restaurant *-- Menu", "Menu o-- Dish", "Waiter --> Dish: serves"],
        ),
        (
            "a social network",
            ["User: handle String; follow, post", "Post: text String, likes int", "Photo: url String"],
            ["User o-- Post", "Post <|-- Photo"],
        ),
        (
            "a flight booking system",
            [
                "Flight: number String, date Date",
                "Seat: row int, letter String",
                "Passenger: name String",
                "Booking: code String; cancel",
            ],
            ["Flight *-- Seat", "Booking --> Passenger: for", "Booking --> Seat: reserves"],
        ),
        (
            "a game",
            [
                "Game: score int; start, pause",
                "Player: name String, lives int; jump",
                "Enemy: damage int",
                "Level: number int",
            ],
            ["Game *-- Level", "Level o-- Enemy", "Game --> Player: controls"],
        ),
        (
            "documents",
            ["Document: title String; print", "Invoice: total float", "Report: pages int", "Printer: model String"],
            ["Document <|-- Invoice", "Document <|-- Report", "Printer --> Document: prints"],
        ),
        (
            "a parking garage",
            [
                "Garage: address String",
                "Level: floor int",
                "Spot: number int, free boolean",
                "Ticket: entryTime Date; pay",
            ],
            ["Garage *-- Level", "Level *-- Spot", "Ticket --> Spot: for"],
        ),
        (
            "a recipe app",
            [
                "Recipe: name String, minutes int; cook",
                "Ingredient: name String, amount float",
                "Step: order int, text String",
            ],
            ["Recipe *-- Step", "Recipe o-- Ingredient"],
        ),
        (
            "a sensor network",
            [
                "Sensor: id String; read",
                "TemperatureSensor: unit String",
                "HumiditySensor: percent float",
                "Gateway: address String",
            ],
            ["Sensor <|-- TemperatureSensor", "Sensor <|-- HumiditySensor", "Gateway o-- Sensor"],
        ),
        (
            "a movie theater",
            [
                "Theater: name String",
                "Screen: number int, seats int",
                "Movie: title String, minutes int",
                "Showing: time Date; sellTicket",
            ],
            ["Theater *-- Screen", "Showing --> Movie: plays", "Showing --> Screen: in"],
        ),
        (
            "a to-do app",
            ["TodoList: name String; add, remove", "Task: title String, done boolean; complete", "Tag: label String"],
            ["TodoList o-- Task", "Task --> Tag: tagged"],
        ),
        (
            "accounts and users",
            ["User: email String; login", "Admin: permissions int", "Guest: sessionId String", "Role: name String"],
            ["User <|-- Admin", "User <|-- Guest", "User --> Role: has"],
        ),
        (
            "a warehouse",
            [
                "Warehouse: city String; ship",
                "Shelf: code String",
                "Product: sku String, stock int",
                "Supplier: name String",
            ],
            ["Warehouse *-- Shelf", "Shelf o-- Product", "Supplier --> Product: supplies"],
        ),
    ],
    "usecase": [
        (
            "Online Store",
            {"Customer": ["browse products", "place order", "track order"], "Admin": ["manage catalog"]},
            ["place order > make payment"],
        ),
        (
            "ATM",
            {"Customer": ["withdraw cash", "check balance", "deposit money"], "Technician": ["refill cash"]},
            ["withdraw cash > verify PIN"],
        ),
        (
            "Library System",
            {"Member": ["search books", "borrow book", "return book"], "Librarian": ["add book", "register member"]},
            [],
        ),
        (
            "Hotel Booking",
            {"Guest": ["search rooms", "book room", "cancel booking"], "Receptionist": ["check in guest"]},
            ["book room > pay deposit"],
        ),
        (
            "Food Delivery App",
            {
                "Customer": ["order food", "rate restaurant"],
                "Courier": ["deliver order"],
                "Restaurant": ["accept order"],
            },
            [],
        ),
        (
            "Online Banking",
            {"Client": ["view statements", "transfer money", "pay bills"], "BankClerk": ["open account"]},
            ["transfer money > confirm with code"],
        ),
        (
            "Learning Platform",
            {"Student": ["enroll in course", "watch lesson", "take quiz"], "Teacher": ["create course", "grade quiz"]},
            [],
        ),
        (
            "Clinic System",
            {"Patient": ["book appointment", "view results"], "Doctor": ["write prescription", "view schedule"]},
            ["book appointment > choose doctor"],
        ),
        ("Ride Sharing App", {"Rider": ["request ride", "pay for ride", "rate driver"], "Driver": ["accept ride"]}, []),
        (
            "Cinema Tickets",
            {"Customer": ["choose movie", "select seats", "buy ticket"], "Manager": ["schedule showing"]},
            ["buy ticket > pay by card"],
        ),
        (
            "Parking Garage",
            {"Driver": ["enter garage", "pay parking", "leave garage"], "Attendant": ["open barrier"]},
            [],
        ),
        ("Email Client", {"User": ["write email", "read inbox", "delete email"]}, ["write email > attach file"]),
        ("Smart Home", {"Owner": ["turn on lights", "set temperature", "lock doors"], "Guest": ["turn on lights"]}, []),
        (
            "Event Tickets",
            {"Visitor": ["find event", "book ticket"], "Organizer": ["create event", "check in visitor"]},
            ["book ticket > receive e-ticket"],
        ),
        (
            "Gym Membership",
            {"Member": ["book class", "cancel class", "renew membership"], "Trainer": ["publish class"]},
            [],
        ),
        (
            "Car Rental",
            {"Customer": ["reserve car", "pick up car", "return car"], "Agent": ["inspect car"]},
            ["reserve car > check license"],
        ),
        (
            "Recipe Site",
            {"Cook": ["search recipes", "save favorite", "post recipe"], "Moderator": ["remove recipe"]},
            [],
        ),
        (
            "Support Desk",
            {"Customer": ["open ticket", "reply to ticket"], "Agent": ["assign ticket", "close ticket"]},
            [],
        ),
        (
            "Music Streaming",
            {"Listener": ["play song", "create playlist", "follow artist"], "Artist": ["upload song"]},
            [],
        ),
        (
            "Vending Machine",
            {"Customer": ["select drink", "pay with coins", "take change"], "Supplier": ["restock machine"]},
            [],
        ),
        (
            "Job Portal",
            {"Candidate": ["search jobs", "apply for job"], "Employer": ["post job", "review applications"]},
            ["apply for job > upload resume"],
        ),
        (
            "Photo Sharing App",
            {"User": ["upload photo", "like photo", "comment on photo"], "Moderator": ["hide photo"]},
            [],
        ),
        (
            "Airport Check-in",
            {"Passenger": ["check in online", "print boarding pass", "drop bag"], "Agent": ["weigh bag"]},
            [],
        ),
        (
            "Voting System",
            {"Voter": ["register to vote", "cast vote"], "Official": ["count votes", "publish results"]},
            ["cast vote > verify identity"],
        ),
    ],
    "activity": [
        ("processing an order", ["receive order", "?item in stock|ship order|notify customer", "close order"]),
        (
            "making tea",
            ["boil water", "put tea bag in cup", "pour water", "?wants milk|add milk|serve plain tea", "drink tea"],
        ),
        (
            "a user login",
            ["show login form", "enter password", "?password correct|open dashboard|show error", "log the attempt"],
        ),
        ("washing clothes", ["sort laundry", "load machine", "*more loads|run wash cycle", "hang clothes"]),
        (
            "approving an expense",
            ["submit expense", "?amount under limit|approve automatically|send to manager", "pay employee"],
        ),
        (
            "checking out at a store",
            ["scan items", "show total", "?pays by card|charge card|take cash", "print receipt"],
        ),
        (
            "handling a support ticket",
            ["open ticket", "assign agent", "*ticket not solved|ask customer for details", "close ticket"],
        ),
        (
            "baking bread",
            ["mix flour and water", "knead dough", "let dough rise", "bake for 40 minutes", "cool the loaf"],
        ),
        (
            "publishing an article",
            ["write draft", "send to editor", "?editor approves|publish article|revise draft", "share on social media"],
        ),
        (
            "boarding a flight",
            ["check in", "drop bag", "pass security", "?gate open|board plane|wait at gate", "take seat"],
        ),
        (
            "a job interview process",
            ["review resume", "?resume fits|schedule interview|send rejection", "record decision"],
        ),
        ("reading a sensor", ["read temperature", "?temperature too high|turn on fan|keep fan off", "log reading"]),
        ("paying a bill", ["open bank app", "enter bill details", "?enough money|pay bill|show warning", "log out"]),
        ("grading exams", ["collect exams", "*exams left|grade next exam", "publish grades"]),
        (
            "registering an account",
            ["fill in form", "?email already used|show error|create account", "send welcome email"],
        ),
        (
            "returning a product",
            ["request return", "ship product back", "?product undamaged|refund money|reject return", "close case"],
        ),
        (
            "brewing coffee",
            ["grind beans", "fill water tank", "start machine", "?cup full|stop machine|keep brewing", "serve coffee"],
        ),
        (
            "deploying software",
            ["build code", "run tests", "?tests pass|deploy to production|fix failing tests", "notify team"],
        ),
        ("a morning routine", ["wake up", "take shower", "?is weekday|go to work|go for a walk", "eat lunch"]),
        ("restocking a shelf", ["count products", "*shelf not full|add product", "update inventory"]),
        (
            "renting a bike",
            ["scan QR code", "?account has credit|unlock bike|ask to top up", "ride bike", "return bike"],
        ),
        ("answering an email", ["read email", "?needs reply|write reply|archive email", "mark as done"]),
        ("planting a garden", ["dig soil", "plant seeds", "*seeds left|water a row", "cover with mulch"]),
        ("checking a parcel", ["scan barcode", "?address valid|send to route|return to sender", "update tracking"]),
        ("cooking pasta", ["boil water", "add pasta", "*pasta not soft|stir and wait", "drain pasta", "add sauce"]),
        (
            "onboarding an employee",
            ["sign contract", "create accounts", "?is remote|ship laptop|prepare desk", "hold welcome meeting"],
        ),
        ("signing a contract", ["read contract", "?terms acceptable|sign contract|ask for changes", "file a copy"]),
        ("cleaning a room", ["open windows", "*dust left|wipe a surface", "vacuum floor", "close windows"]),
        ("a library book return", ["scan book", "?book is late|charge fee|thank member", "put book on cart"]),
        (
            "ordering at a cafe",
            ["choose drink", "?wants food|add sandwich|skip food", "pay at counter", "wait for order"],
        ),
    ],
    "state": [
        ("a traffic light", "Red", ["Red > Green: timer", "Green > Yellow: timer", "Yellow > Red: timer"]),
        (
            "an order",
            "New",
            [
                "New > Paid: payment received",
                "Paid > Shipped: ship",
                "Shipped > Delivered: arrive",
                "Delivered > end: close",
            ],
        ),
        (
            "a door",
            "Closed",
            ["Closed > Open: open", "Open > Closed: close", "Closed > Locked: lock", "Locked > Closed: unlock"],
        ),
        (
            "a media player",
            "Stopped",
            [
                "Stopped > Playing: play",
                "Playing > Paused: pause",
                "Paused > Playing: resume",
                "Playing > Stopped: stop",
            ],
        ),
        (
            "a support ticket",
            "Open",
            [
                "Open > InProgress: assign",
                "InProgress > Waiting: ask customer",
                "Waiting > InProgress: customer replies",
                "InProgress > Closed: solve",
                "Closed > end: archive",
            ],
        ),
        (
            "a phone call",
            "Idle",
            [
                "Idle > Ringing: incoming call",
                "Ringing > Talking: answer",
                "Ringing > Idle: reject",
                "Talking > Idle: hang up",
            ],
        ),
        (
            "a washing machine",
            "Off",
            [
                "Off > Filling: start",
                "Filling > Washing: full",
                "Washing > Spinning: wash done",
                "Spinning > Off: finished",
            ],
        ),
        (
            "a user account",
            "Pending",
            [
                "Pending > Active: verify email",
                "Active > Suspended: too many failed logins",
                "Suspended > Active: reset password",
                "Active > end: delete account",
            ],
        ),
        (
            "an elevator",
            "Idle",
            [
                "Idle > MovingUp: call from above",
                "Idle > MovingDown: call from below",
                "MovingUp > Idle: arrive",
                "MovingDown > Idle: arrive",
            ],
        ),
        (
            "a vending machine",
            "Waiting",
            [
                "Waiting > HasCoins: insert coin",
                "HasCoins > Dispensing: select drink",
                "Dispensing > Waiting: drink taken",
            ],
        ),
        (
            "a job in a queue",
            "Queued",
            [
                "Queued > Running: start",
                "Running > Succeeded: finish",
                "Running > Failed: error",
                "Failed > Queued: retry",
                "Succeeded > end: clean up",
            ],
        ),
        (
            "a blog post",
            "Draft",
            [
                "Draft > InReview: submit",
                "InReview > Draft: request changes",
                "InReview > Published: approve",
                "Published > Archived: archive",
            ],
        ),
        (
            "a package delivery",
            "Created",
            [
                "Created > InTransit: pick up",
                "InTransit > OutForDelivery: reach depot",
                "OutForDelivery > Delivered: hand over",
                "OutForDelivery > InTransit: nobody home",
            ],
        ),
        (
            "a thermostat",
            "Idle",
            [
                "Idle > Heating: too cold",
                "Idle > Cooling: too warm",
                "Heating > Idle: target reached",
                "Cooling > Idle: target reached",
            ],
        ),
        (
            "a game character",
            "Standing",
            [
                "Standing > Walking: move",
                "Walking > Running: sprint",
                "Running > Walking: release sprint",
                "Walking > Standing: stop",
                "Standing > Jumping: jump",
                "Jumping > Standing: land",
            ],
        ),
        (
            "a bank loan",
            "Applied",
            [
                "Applied > Approved: credit check ok",
                "Applied > Rejected: credit check failed",
                "Approved > Repaying: pay out",
                "Repaying > end: last payment",
            ],
        ),
        (
            "a computer",
            "Off",
            [
                "Off > Booting: power button",
                "Booting > Running: boot done",
                "Running > Sleeping: close lid",
                "Sleeping > Running: open lid",
                "Running > Off: shut down",
            ],
        ),
        (
            "a parking spot",
            "Free",
            [
                "Free > Reserved: reserve",
                "Reserved > Occupied: car arrives",
                "Occupied > Free: car leaves",
                "Reserved > Free: reservation expires",
            ],
        ),
        (
            "a library book",
            "Available",
            [
                "Available > OnLoan: borrow",
                "OnLoan > Available: return",
                "OnLoan > Overdue: due date passes",
                "Overdue > Available: return late",
            ],
        ),
        (
            "a coffee machine",
            "Ready",
            [
                "Ready > Grinding: press button",
                "Grinding > Brewing: beans ground",
                "Brewing > Ready: cup full",
                "Ready > Cleaning: clean cycle",
                "Cleaning > Ready: done",
            ],
        ),
        (
            "an invoice",
            "Unpaid",
            [
                "Unpaid > Paid: payment received",
                "Unpaid > Overdue: due date passes",
                "Overdue > Paid: late payment",
                "Paid > end: archive",
            ],
        ),
        (
            "a login session",
            "LoggedOut",
            [
                "LoggedOut > LoggedIn: valid login",
                "LoggedIn > Locked: idle timeout",
                "Locked > LoggedIn: enter PIN",
                "LoggedIn > LoggedOut: log out",
            ],
        ),
        (
            "a microwave",
            "Idle",
            [
                "Idle > Cooking: start",
                "Cooking > Paused: open door",
                "Paused > Cooking: close door",
                "Cooking > Idle: timer ends",
            ],
        ),
        (
            "a pull request",
            "Open",
            [
                "Open > Approved: review passes",
                "Open > ChangesRequested: review fails",
                "ChangesRequested > Open: push fixes",
                "Approved > Merged: merge",
                "Merged > end: delete branch",
            ],
        ),
        (
            "a smart lock",
            "Locked",
            [
                "Locked > Unlocked: valid code",
                "Unlocked > Locked: timeout",
                "Locked > Alarm: wrong code three times",
                "Alarm > Locked: owner resets",
            ],
        ),
        (
            "a subscription",
            "Trial",
            [
                "Trial > Active: pay",
                "Trial > end: trial ends",
                "Active > Cancelled: cancel",
                "Cancelled > Active: resubscribe",
            ],
        ),
        (
            "a download",
            "Waiting",
            [
                "Waiting > Downloading: start",
                "Downloading > Paused: pause",
                "Paused > Downloading: resume",
                "Downloading > Complete: all bytes received",
            ],
        ),
        (
            "a kettle",
            "Cold",
            ["Cold > Heating: switch on", "Heating > Boiling: reach 100 degrees", "Boiling > Cold: switch off"],
        ),
    ],
    "component": [
        (
            "an online shop",
            ["WebApp", "OrderService", "db:OrdersDB"],
            ["WebApp > OrderService: REST", "OrderService > OrdersDB: SQL"],
        ),
        (
            "a chat system",
            ["MobileApp", "ChatServer", "queue:MessageQueue", "db:MessageStore"],
            [
                "MobileApp > ChatServer: WebSocket",
                "ChatServer > MessageQueue: publish",
                "ChatServer > MessageStore: save",
            ],
        ),
        (
            "a blog platform",
            ["Frontend", "ApiServer", "SearchService", "db:PostsDB"],
            ["Frontend > ApiServer: HTTP", "ApiServer > PostsDB: SQL", "ApiServer > SearchService: index"],
        ),
        (
            "a payment platform",
            ["Checkout", "PaymentApi", "FraudEngine", "db:LedgerDB"],
            ["Checkout > PaymentApi: HTTPS", "PaymentApi > FraudEngine: score", "PaymentApi > LedgerDB: record"],
        ),
        (
            "a video service",
            ["Player", "StreamService", "Transcoder", "db:VideoStore"],
            ["Player > StreamService: HLS", "Transcoder > VideoStore: write", "StreamService > VideoStore: read"],
        ),
        (
            "a ride app backend",
            ["RiderApp", "DriverApp", "DispatchService", "db:TripsDB"],
            ["RiderApp > DispatchService: REST", "DriverApp > DispatchService: REST", "DispatchService > TripsDB: SQL"],
        ),
        (
            "an email pipeline",
            ["SignupService", "queue:EmailQueue", "EmailSender", "SmtpRelay"],
            [
                "SignupService > EmailQueue: enqueue",
                "EmailSender > EmailQueue: consume",
                "EmailSender > SmtpRelay: SMTP",
            ],
        ),
        (
            "a library system",
            ["KioskApp", "CatalogService", "LoanService", "db:LibraryDB"],
            ["KioskApp > CatalogService: search", "KioskApp > LoanService: borrow", "LoanService > LibraryDB: SQL"],
        ),
        (
            "a weather app",
            ["WeatherApp", "ForecastApi", "Cache", "db:StationData"],
            ["WeatherApp > ForecastApi: HTTPS", "ForecastApi > Cache: lookup", "ForecastApi > StationData: query"],
        ),
        (
            "an IoT platform",
            ["Device", "queue:MqttBroker", "Ingestor", "db:TimeSeriesDB"],
            ["Device > MqttBroker: MQTT", "Ingestor > MqttBroker: subscribe", "Ingestor > TimeSeriesDB: insert"],
        ),
        (
            "a login system",
            ["LoginPage", "AuthService", "TokenService", "db:UsersDB"],
            [
                "LoginPage > AuthService: POST login",
                "AuthService > UsersDB: SQL",
                "AuthService > TokenService: issue token",
            ],
        ),
        (
            "a food delivery backend",
            ["CustomerApp", "OrderApi", "queue:KitchenQueue", "KitchenDisplay"],
            [
                "CustomerApp > OrderApi: REST",
                "OrderApi > KitchenQueue: publish",
                "KitchenDisplay > KitchenQueue: consume",
            ],
        ),
        (
            "a search engine",
            ["Crawler", "Indexer", "QueryService", "db:SearchIndex"],
            ["Crawler > Indexer: pages", "Indexer > SearchIndex: write", "QueryService > SearchIndex: read"],
        ),
        (
            "a hotel booking site",
            ["BookingSite", "RoomService", "PaymentService", "db:BookingsDB"],
            ["BookingSite > RoomService: REST", "BookingSite > PaymentService: REST", "RoomService > BookingsDB: SQL"],
        ),
        (
            "a photo app",
            ["PhotoApp", "UploadApi", "Thumbnailer", "db:PhotoStore"],
            ["PhotoApp > UploadApi: HTTPS", "UploadApi > PhotoStore: save", "Thumbnailer > PhotoStore: resize"],
        ),
        (
            "a game server",
            ["GameClient", "Matchmaker", "GameServer", "db:PlayerDB"],
            [
                "GameClient > Matchmaker: find match",
                "Matchmaker > GameServer: start match",
                "GameServer > PlayerDB: save score",
            ],
        ),
        (
            "an analytics stack",
            ["Tracker", "queue:EventStream", "Aggregator", "db:Warehouse", "Dashboard"],
            [
                "Tracker > EventStream: events",
                "Aggregator > EventStream: read",
                "Aggregator > Warehouse: load",
                "Dashboard > Warehouse: query",
            ],
        ),
        (
            "a school portal",
            ["StudentPortal", "GradesService", "ScheduleService", "db:SchoolDB"],
            [
                "StudentPortal > GradesService: REST",
                "StudentPortal > ScheduleService: REST",
                "GradesService > SchoolDB: SQL",
            ],
        ),
        (
            "a notification system",
            ["OrderService", "queue:NotifyQueue", "PushService", "SmsService"],
            [
                "OrderService > NotifyQueue: publish",
                "PushService > NotifyQueue: consume",
                "SmsService > NotifyQueue: consume",
            ],
        ),
        (
            "a clinic system",
            ["ReceptionApp", "AppointmentService", "BillingService", "db:PatientDB"],
            [
                "ReceptionApp > AppointmentService: REST",
                "AppointmentService > PatientDB: SQL",
                "AppointmentService > BillingService: invoice",
            ],
        ),
        (
            "a recommendation service",
            ["ShopFrontend", "RecommendationApi", "ModelServer", "db:FeatureStore"],
            [
                "ShopFrontend > RecommendationApi: REST",
                "RecommendationApi > ModelServer: predict",
                "ModelServer > FeatureStore: read",
            ],
        ),
        (
            "a ticket system",
            ["HelpdeskUi", "TicketService", "queue:AssignQueue", "db:TicketsDB"],
            [
                "HelpdeskUi > TicketService: REST",
                "TicketService > TicketsDB: SQL",
                "TicketService > AssignQueue: publish",
            ],
        ),
    ],
    "deployment": [
        (
            "a web shop",
            ["actor:User", "node:WebServer(artifact:ShopApp)", "node:DbServer(database:ShopDB)"],
            ["User > WebServer: HTTPS", "ShopApp > ShopDB: JDBC"],
        ),
        (
            "a blog with a CDN",
            ["actor:Reader", "cloud:CDN", "node:AppServer(artifact:BlogApp)", "database:PostsDB"],
            ["Reader > CDN: HTTPS", "CDN > AppServer", "BlogApp > PostsDB: SQL"],
        ),
        (
            "a mobile backend",
            [
                "actor:PhoneUser",
                "node:ApiServer(artifact:ApiService)",
                "node:CacheServer(artifact:Redis)",
                "database:UsersDB",
            ],
            ["PhoneUser > ApiServer: HTTPS", "ApiService > Redis: TCP", "ApiService > UsersDB: SQL"],
        ),
        (
            "a game service",
            ["actor:Player", "node:GameHost(artifact:GameServer)", "node:DbHost(database:Scores)"],
            ["Player > GameHost: UDP", "GameServer > Scores: SQL"],
        ),
        (
            "an intranet",
            ["actor:Employee", "node:Proxy", "node:IntranetServer(artifact:Wiki)", "database:WikiDB"],
            ["Employee > Proxy: HTTPS", "Proxy > IntranetServer: HTTP", "Wiki > WikiDB: SQL"],
        ),
        (
            "a video platform",
            [
                "actor:Viewer",
                "cloud:VideoCDN",
                "node:OriginServer(artifact:VideoStore)",
                "node:EncoderNode(artifact:Transcoder)",
            ],
            ["Viewer > VideoCDN: HTTPS", "VideoCDN > OriginServer", "Transcoder > VideoStore: write"],
        ),
        (
            "a smart home",
            ["node:Hub(artifact:HomeController)", "node:Sensor", "cloud:HomeCloud", "actor:Owner"],
            ["Sensor > Hub: Zigbee", "Hub > HomeCloud: MQTT", "Owner > HomeCloud: HTTPS"],
        ),
        (
            "a payment service",
            [
                "actor:Merchant",
                "node:Gateway(artifact:PaymentApi)",
                "node:VaultServer(database:CardVault)",
                "cloud:CardNetwork",
            ],
            ["Merchant > Gateway: HTTPS", "PaymentApi > CardVault: TLS", "Gateway > CardNetwork: ISO 8583"],
        ),
        (
            "an email system",
            ["actor:Sender", "node:MailServer(artifact:SmtpService)", "node:StorageServer(database:Mailboxes)"],
            ["Sender > MailServer: SMTP", "SmtpService > Mailboxes: write"],
        ),
        (
            "a data pipeline",
            [
                "node:IngestNode(artifact:Collector)",
                "node:QueueNode(queue:Kafka)",
                "node:WorkerNode(artifact:Processor)",
                "database:Warehouse",
            ],
            ["Collector > Kafka: produce", "Processor > Kafka: consume", "Processor > Warehouse: load"],
        ),
        (
            "a school website",
            ["actor:Parent", "node:WebHost(artifact:SchoolSite)", "database:SchoolDB"],
            ["Parent > WebHost: HTTPS", "SchoolSite > SchoolDB: SQL"],
        ),
        (
            "a chat app",
            ["actor:ChatUser", "node:LoadBalancer", "node:ChatNode(artifact:ChatServer)", "database:MessagesDB"],
            ["ChatUser > LoadBalancer: WebSocket", "LoadBalancer > ChatNode", "ChatServer > MessagesDB: SQL"],
        ),
        (
            "a point of sale",
            ["node:Till(artifact:PosApp)", "node:StoreServer(artifact:InventoryService)", "cloud:HeadOffice"],
            ["PosApp > StoreServer: LAN", "StoreServer > HeadOffice: VPN"],
        ),
        (
            "a hospital network",
            ["actor:Nurse", "node:WardPc(artifact:ChartApp)", "node:RecordsServer(database:PatientRecords)"],
            ["Nurse > WardPc", "ChartApp > PatientRecords: HL7"],
        ),
        (
            "a machine learning service",
            [
                "actor:Client",
                "node:ApiNode(artifact:InferenceApi)",
                "node:GpuNode(artifact:ModelServer)",
                "database:ModelRegistry",
            ],
            ["Client > ApiNode: HTTPS", "InferenceApi > ModelServer: gRPC", "ModelServer > ModelRegistry: read"],
        ),
        (
            "a library kiosk",
            ["actor:Member", "node:Kiosk(artifact:KioskApp)", "node:LibraryServer(database:Catalog)"],
            ["Member > Kiosk", "KioskApp > Catalog: SQL"],
        ),
        (
            "a weather station",
            ["node:Station(artifact:Logger)", "cloud:WeatherCloud", "actor:Meteorologist"],
            ["Logger > WeatherCloud: HTTPS", "Meteorologist > WeatherCloud: HTTPS"],
        ),
        (
            "a ticket shop",
            ["actor:Fan", "cloud:Cdn", "node:ShopServer(artifact:TicketApp)", "node:DbServer(database:TicketsDB)"],
            ["Fan > Cdn: HTTPS", "Cdn > ShopServer", "TicketApp > TicketsDB: SQL"],
        ),
        (
            "a build system",
            [
                "actor:Developer",
                "node:GitServer(artifact:Repository)",
                "node:CiServer(artifact:BuildAgent)",
                "node:ArtifactServer(database:Packages)",
            ],
            ["Developer > GitServer: SSH", "BuildAgent > Repository: clone", "BuildAgent > Packages: upload"],
        ),
        (
            "a parking system",
            [
                "node:EntryGate(artifact:GateController)",
                "node:ParkingServer(artifact:ParkingApp)",
                "database:SpotsDB",
                "actor:Driver",
            ],
            ["Driver > EntryGate", "GateController > ParkingServer: HTTPS", "ParkingApp > SpotsDB: SQL"],
        ),
        (
            "a photo backup service",
            ["actor:Photographer", "node:PhoneDevice(artifact:BackupApp)", "cloud:PhotoCloud"],
            ["Photographer > PhoneDevice", "BackupApp > PhotoCloud: HTTPS"],
        ),
        (
            "a helpdesk tool",
            [
                "actor:Agent",
                "node:HelpdeskServer(artifact:HelpdeskApp)",
                "node:SearchNode(artifact:SearchIndex)",
                "database:TicketsDB",
            ],
            ["Agent > HelpdeskServer: HTTPS", "HelpdeskApp > SearchIndex: HTTP", "HelpdeskApp > TicketsDB: SQL"],
        ),
    ],
    "object": [
        (
            "a customer and an order",
            ['alice: name="Alice", age=34', "order1: number=1001, total=59.90"],
            ["alice > order1: places"],
        ),
        (
            "a library loan",
            ['bob: name="Bob"', 'book42: title="Dune", year=1965', 'loan7: due="2026-05-01"'],
            ["bob > loan7: has", "loan7 > book42: for"],
        ),
        (
            "a car and its engine",
            ['myCar: model="Civic", year=2020', "engine1: power=150"],
            ["myCar > engine1: contains"],
        ),
        (
            "a school class",
            ["mathClass: room=12", 'anna: name="Anna", grade=9', 'tom: name="Tom", grade=9'],
            ["mathClass > anna: enrolls", "mathClass > tom: enrolls"],
        ),
        (
            "a flight booking",
            ['flightLH400: from="FRA", to="JFK"', 'seat14C: row=14, letter="C"', 'maria: name="Maria"'],
            ["maria > seat14C: sits in", "flightLH400 > seat14C: has"],
        ),
        (
            "a bank transfer",
            ['acc1: owner="Lee", balance=500', 'acc2: owner="Kim", balance=120', "transfer9: amount=80"],
            ["transfer9 > acc1: from", "transfer9 > acc2: to"],
        ),
        (
            "a playlist",
            ['roadTrip: name="Road Trip"', 'song1: title="Highway", seconds=210', 'song2: title="Sunset", seconds=185'],
            ["roadTrip > song1: contains", "roadTrip > song2: contains"],
        ),
        (
            "a doctor visit",
            ['drSmith: specialty="cardiology"', 'patient3: name="Omar", age=61', 'visit12: date="2026-02-10"'],
            ["visit12 > drSmith: with", "visit12 > patient3: of"],
        ),
        (
            "a shopping cart",
            ["cart5: items=2", "apples: price=3.20, quantity=4", "bread: price=2.50, quantity=1"],
            ["cart5 > apples: holds", "cart5 > bread: holds"],
        ),
        (
            "a hotel stay",
            ["room204: floor=2, beds=2", 'guestLiu: name="Liu"', "stay88: nights=3"],
            ["stay88 > guestLiu: for", "stay88 > room204: in"],
        ),
        (
            "a team and players",
            ['tigers: city="Leeds"', 'player9: name="Sam", number=9', 'player10: name="Ali", number=10'],
            ["tigers > player9: has", "tigers > player10: has"],
        ),
        (
            "an invoice",
            ["invoice77: total=240.00", 'lineA: item="Chair", price=120.00', 'lineB: item="Desk", price=120.00'],
            ["invoice77 > lineA: contains", "invoice77 > lineB: contains"],
        ),
        (
            "a house and rooms",
            ['house1: street="Elm Street"', "kitchen: area=15", "bedroom: area=12"],
            ["house1 > kitchen: has", "house1 > bedroom: has"],
        ),
        (
            "a recipe",
            ["pancakes: servings=4", "flour: grams=200", "milk: ml=300"],
            ["pancakes > flour: uses", "pancakes > milk: uses"],
        ),
        (
            "a company department",
            ["sales: budget=50000", 'emma: role="manager"', 'raj: role="seller"'],
            ["sales > emma: led by", "sales > raj: employs"],
        ),
        (
            "a parcel shipment",
            ["parcel3: weight=2.5", 'depotBerlin: city="Berlin"', 'courierJo: name="Jo"'],
            ["parcel3 > depotBerlin: stored at", "courierJo > parcel3: delivers"],
        ),
        (
            "a movie showing",
            ['show21: time="20:00"', "inception: minutes=148", "screen3: seats=120"],
            ["show21 > inception: plays", "show21 > screen3: in"],
        ),
        (
            "a user and devices",
            ['userKai: email="kai@example.com"', 'phone1: os="Android"', 'laptop1: os="Linux"'],
            ["userKai > phone1: owns", "userKai > laptop1: owns"],
        ),
        (
            "a museum exhibit",
            ['monaLisa: artist="Leonardo", year=1503', 'room711: wing="Denon"'],
            ["room711 > monaLisa: displays"],
        ),
        (
            "a football match",
            ['match3: date="2026-08-15"', 'homeTeam: name="Lions"', 'awayTeam: name="Eagles"'],
            ["match3 > homeTeam: home", "match3 > awayTeam: away"],
        ),
        (
            "a laptop order",
            ['order55: status="shipped"', 'laptop7: model="ThinkPad", ram=16', 'customerZoe: name="Zoe"'],
            ["customerZoe > order55: placed", "order55 > laptop7: contains"],
        ),
        (
            "a classroom timetable",
            ["monday: periods=6", 'biology: room="B2"', 'art: room="A1"'],
            ["monday > biology: first", "monday > art: second"],
        ),
    ],
    "er": [
        (
            "an online shop",
            ["Customer: name varchar, email varchar", "Orders: total decimal, created date"],
            ["Customer 1-n Orders: places"],
        ),
        (
            "a library",
            ["Book: title varchar, year int", "Author: name varchar", "Loan: due date"],
            ["Author n-n Book: writes", "Book 1-n Loan: has"],
        ),
        (
            "a school",
            ["Student: name varchar, birth date", "Course: title varchar", "Teacher: name varchar"],
            ["Student n-n Course: takes", "Teacher 1-n Course: teaches"],
        ),
        (
            "a blog",
            ["Users: name varchar", "Post: title varchar, body text", "Comment: text text"],
            ["Users 1-n Post: writes", "Post 1-n Comment: has"],
        ),
        (
            "a hospital",
            ["Patient: name varchar, birth date", "Doctor: name varchar", "Appointment: time datetime"],
            ["Patient 1-n Appointment: books", "Doctor 1-n Appointment: attends"],
        ),
        (
            "a bank",
            ["Client: name varchar", "Account: iban varchar, balance decimal", "Card: number varchar"],
            ["Client 1-n Account: owns", "Account 1-01 Card: issues"],
        ),
        (
            "a hotel",
            ["Guest: name varchar", "Room: number int, beds int", "Reservation: start date, nights int"],
            ["Guest 1-n Reservation: makes", "Room 1-n Reservation: booked in"],
        ),
        (
            "a music app",
            ["Artist: name varchar", "Album: title varchar, year int", "Track: title varchar, seconds int"],
            ["Artist 1-n Album: releases", "Album 1-n Track: contains"],
        ),
        (
            "a company",
            ["Department: name varchar", "Employee: name varchar, salary decimal", "Project: name varchar"],
            ["Department 1-n Employee: employs", "Employee n-n Project: works on"],
        ),
        (
            "a car rental",
            [
                "Customer: name varchar, license varchar",
                "Car: plate varchar, model varchar",
                "Rental: start date, days int",
            ],
            ["Customer 1-n Rental: rents", "Car 1-n Rental: used in"],
        ),
        (
            "a restaurant",
            ["Dish: name varchar, price decimal", "Ingredient: name varchar", "OrderItem: quantity int"],
            ["Dish n-n Ingredient: uses", "Dish 1-n OrderItem: ordered as"],
        ),
        (
            "a social network",
            ["Member: handle varchar", "Post: text text, likes int", "Photo: url varchar"],
            ["Member 1-n Post: shares", "Post 1-01 Photo: shows"],
        ),
        (
            "an airline",
            ["Flight: number varchar, departs datetime", "Passenger: name varchar", "Ticket: seat varchar"],
            ["Flight 1-n Ticket: sells", "Passenger 1-n Ticket: holds"],
        ),
        (
            "a gym",
            ["Member: name varchar", "Membership: plan varchar, ends date", "Visit: day date"],
            ["Member 1-1 Membership: has", "Member 1-n Visit: makes"],
        ),
        (
            "a warehouse",
            ["Product: sku varchar, name varchar", "Supplier: name varchar", "Stock: quantity int"],
            ["Supplier n-n Product: supplies", "Product 1-n Stock: stored as"],
        ),
        (
            "a movie theater",
            ["Movie: title varchar, minutes int", "Screening: time datetime", "Ticket: seat varchar, price decimal"],
            ["Movie 1-n Screening: shown in", "Screening 1-n Ticket: sells"],
        ),
        (
            "a university",
            ["Faculty: name varchar", "Program: title varchar", "Student: name varchar"],
            ["Faculty 1-n Program: offers", "Program 1-n Student: enrolls"],
        ),
        (
            "a recipe site",
            ["Recipe: name varchar, minutes int", "Chef: name varchar", "Review: stars int"],
            ["Chef 1-n Recipe: publishes", "Recipe 1-n Review: gets"],
        ),
        (
            "a parking system",
            ["Garage: address varchar", "Spot: number int", "Session: start datetime, fee decimal"],
            ["Garage 1-n Spot: contains", "Spot 1-n Session: hosts"],
        ),
        (
            "a support desk",
            ["Customer: name varchar", "Ticket: subject varchar, status varchar", "Agent: name varchar"],
            ["Customer 1-n Ticket: opens", "Agent 1-n Ticket: handles"],
        ),
        (
            "an event app",
            ["Event: title varchar, day date", "Venue: name varchar, capacity int", "Attendee: name varchar"],
            ["Venue 1-n Event: hosts", "Event n-n Attendee: attended by"],
        ),
        (
            "a fleet tracker",
            ["Vehicle: plate varchar", "Driver: name varchar", "Trip: distance decimal"],
            ["Driver 1-n Trip: drives", "Vehicle 1-n Trip: used for"],
        ),
    ],
    "gantt": [
        (
            "a website project",
            "2026-03-02",
            ["Design: 5", "Build: 10 after Design", "Test: 4 after Build", "!Launch after Test"],
        ),
        (
            "a kitchen renovation",
            "2026-04-06",
            [
                "Plan kitchen: 3",
                "Remove old units: 2 after Plan kitchen",
                "Install units: 5 after Remove old units",
                "!Kitchen ready after Install units",
            ],
        ),
        (
            "a mobile app release",
            "2026-05-04",
            [
                "Write specs: 4",
                "Develop app: 15 after Write specs",
                "Beta test: 6 after Develop app",
                "!Store release after Beta test",
            ],
        ),
        (
            "a conference",
            "2026-06-01",
            [
                "Book venue: 3",
                "Invite speakers: 7 after Book venue",
                "Sell tickets: 10 after Invite speakers",
                "!Conference day after Sell tickets",
            ],
        ),
        (
            "writing a thesis",
            "2026-01-12",
            [
                "Research: 20",
                "Write chapters: 30 after Research",
                "Proofread: 5 after Write chapters",
                "!Submission after Proofread",
            ],
        ),
        (
            "moving house",
            "2026-07-06",
            ["Pack boxes: 4", "Move furniture: 2 after Pack boxes", "Unpack: 3 after Move furniture"],
        ),
        (
            "a marketing campaign",
            "2026-02-02",
            [
                "Plan campaign: 5",
                "Create ads: 8 after Plan campaign",
                "Run ads: 14 after Create ads",
                "!Report results after Run ads",
            ],
        ),
        (
            "building a shed",
            "2026-08-03",
            [
                "Buy materials: 2",
                "Lay foundation: 3 after Buy materials",
                "Build walls: 4 after Lay foundation",
                "Add roof: 2 after Build walls",
            ],
        ),
        (
            "a data migration",
            "2026-09-07",
            [
                "Analyze data: 5",
                "Write scripts: 7 after Analyze data",
                "Migrate data: 3 after Write scripts",
                "!Go live after Migrate data",
            ],
        ),
        (
            "a school play",
            "2026-10-05",
            ["Cast actors: 3", "Rehearse: 15 after Cast actors", "Build set: 10", "!Opening night after Rehearse"],
        ),
        (
            "a product launch",
            "2026-11-02",
            [
                "Market research: 6",
                "Prototype: 10 after Market research",
                "Manufacture: 12 after Prototype",
                "!Launch day after Manufacture",
            ],
        ),
        (
            "a garden makeover",
            "2026-03-16",
            ["Clear garden: 2", "Plant trees: 3 after Clear garden", "Lay lawn: 2 after Plant trees"],
        ),
        (
            "a hiring round",
            "2026-04-13",
            [
                "Post job: 2",
                "Collect applications: 10 after Post job",
                "Interview: 5 after Collect applications",
                "!Offer sent after Interview",
            ],
        ),
        (
            "a wedding",
            "2026-05-11",
            [
                "Book venue: 5",
                "Send invitations: 3 after Book venue",
                "Plan menu: 4 after Book venue",
                "!Wedding day after Send invitations",
            ],
        ),
        (
            "an API upgrade",
            "2026-06-15",
            ["Design API: 4", "Implement API: 8 after Design API", "Migrate clients: 6 after Implement API"],
        ),
        (
            "a book publication",
            "2026-01-19",
            [
                "Write manuscript: 40",
                "Edit: 10 after Write manuscript",
                "Print: 5 after Edit",
                "!Book release after Print",
            ],
        ),
        (
            "an office move",
            "2026-02-16",
            ["Find office: 10", "Set up network: 4 after Find office", "Move desks: 2 after Set up network"],
        ),
        (
            "a security audit",
            "2026-03-09",
            [
                "Scope audit: 2",
                "Scan systems: 5 after Scope audit",
                "Fix issues: 8 after Scan systems",
                "!Audit passed after Fix issues",
            ],
        ),
        (
            "a training course",
            "2026-09-14",
            ["Prepare slides: 5", "Record videos: 6 after Prepare slides", "Run course: 10 after Record videos"],
        ),
        (
            "a hackathon",
            "2026-10-19",
            [
                "Find sponsors: 7",
                "Open registration: 5 after Find sponsors",
                "Hackathon weekend: 2 after Open registration",
                "!Winners announced after Hackathon weekend",
            ],
        ),
    ],
    "mindmap": [
        "Trip planning: Transport(Flights, Train); Lodging(Hotel, Camping); Budget",
        "Healthy life: Food(Vegetables, Water); Sport(Running, Yoga); Sleep",
        "Learning Python: Basics(Variables, Loops); Libraries(NumPy, Pandas); Projects",
        "Starting a business: Idea; Money(Savings, Investors); Team(Founders, First hires)",
        "Wedding: Venue; Guests(Family, Friends); Food(Menu, Cake); Music",
        "Home office: Desk; Computer(Laptop, Monitor); Lighting",
        "Marketing: Social media(Instagram, LinkedIn); Email; Events",
        "Garden: Vegetables(Tomatoes, Carrots); Flowers(Roses, Tulips); Tools",
        "Climate change: Causes(Coal, Cars); Effects(Heat waves, Floods); Solutions(Solar, Wind)",
        "Cooking: Breakfast(Eggs, Oatmeal); Lunch(Salad); Dinner(Pasta, Soup)",
        "Web development: Frontend(HTML, CSS); Backend(APIs, Databases); Hosting",
        "Birthday party: Invitations; Games(Quiz, Music); Food(Pizza, Cake)",
        "Exam preparation: Subjects(Math, History); Schedule; Practice tests",
        "Moving house: Packing(Boxes, Labels); Transport(Van); New home(Internet, Keys)",
        "Reading list: Fiction(Novels, Poetry); Science(Physics, Biology); Biographies",
        "Podcast launch: Topic; Equipment(Microphone, Headphones); Publishing(Spotify, RSS)",
        "Fitness plan: Cardio(Cycling, Swimming); Strength(Weights); Rest days",
        "Product design: Users(Interviews, Personas); Prototype; Testing(Usability, A/B tests)",
        "Family budget: Income(Salary); Expenses(Rent, Groceries, Transport); Savings",
        "Camping trip: Gear(Tent, Sleeping bag); Food(Snacks, Water); Route",
        "Remote work: Tools(Chat, Video calls); Habits(Breaks, Routine); Home desk",
        "Space exploration: Planets(Mars, Jupiter); Rockets; Telescopes(Hubble, Webb)",
    ],
    "wbs": [
        "Website launch: Design(Wireframes, Visual design); Development(Frontend, Backend); Launch",
        "Office move: Planning(Budget, Timeline); Packing(Desks, Computers); Setup(Network, Phones)",
        "Mobile app: Requirements; Build(iOS app, Android app); Release(Store listing, Marketing)",
        "House construction: Foundation; Structure(Walls, Roof); Interior(Plumbing, Electrics)",
        "Conference: Venue(Booking, Catering); Program(Speakers, Schedule); Tickets",
        "Product launch: Research(Survey, Competitors); Production; Sales(Website, Shops)",
        "Data migration: Analysis(Inventory, Mapping); Migration(Scripts, Dry run); Cutover",
        "Wedding planning: Ceremony(Venue, Officiant); Reception(Food, Music); Invitations",
        "Training course: Content(Slides, Exercises); Delivery(Classroom, Online); Feedback",
        "Kitchen renovation: Design; Demolition; Installation(Cabinets, Appliances, Lights)",
        "Marketing campaign: Strategy; Content(Videos, Posts); Analytics(Reports)",
        "Software release: Coding(Features, Bug fixes); Testing(Unit tests, User tests); Deployment",
        "School festival: Stalls(Food, Games); Stage(Music, Drama); Cleanup",
        "Book project: Writing(Draft, Revisions); Editing; Publishing(Cover, Printing)",
        "Hiring process: Job post; Screening(Resumes, Calls); Interviews(Technical, Final)",
        "Garden redesign: Planning(Sketch, Budget); Hardscape(Path, Patio); Planting",
        "Charity run: Route(Permits, Signs); Runners(Registration, Numbers); Donations",
        "Server upgrade: Preparation(Backup, Plan); Upgrade(Hardware, Software); Verification",
        "Film production: Pre-production(Script, Casting); Shooting; Post-production(Editing, Sound)",
        "Trade fair booth: Design(Layout, Graphics); Logistics(Shipping, Setup); Staffing",
    ],
    "timing": [
        (
            "a traffic light and a car",
            ["robust Light=traffic light", "concise Car=car"],
            [
                "0: Light Red, Car Waiting",
                "30: Light Green, Car Driving",
                "60: Light Yellow",
                "65: Light Red, Car Waiting",
            ],
        ),
        (
            "a web request",
            ["concise Browser=browser", "concise Server=server"],
            [
                "0: Browser Idle, Server Idle",
                "10: Browser Waiting, Server Processing",
                "50: Browser Rendering, Server Idle",
            ],
        ),
        (
            "a washing machine",
            ["robust Machine=washing machine"],
            ["0: Machine Off", "5: Machine Filling", "15: Machine Washing", "45: Machine Spinning", "55: Machine Off"],
        ),
        (
            "a door sensor and an alarm",
            ["concise Door=door", "robust Alarm=alarm"],
            ["0: Door Closed, Alarm Armed", "20: Door Open, Alarm Ringing", "40: Door Closed, Alarm Off"],
        ),
        (
            "a heater",
            ["robust Heater=heater", "concise Room=room"],
            ["0: Heater Off, Room Cold", "10: Heater On", "40: Room Warm", "50: Heater Off"],
        ),
        (
            "a printer job",
            ["concise Printer=printer"],
            ["0: Printer Idle", "5: Printer Warming", "15: Printer Printing", "35: Printer Idle"],
        ),
        (
            "a phone call",
            ["concise Caller=caller", "concise Callee=callee"],
            [
                "0: Caller Dialing, Callee Idle",
                "5: Callee Ringing",
                "12: Caller Talking, Callee Talking",
                "60: Caller Idle, Callee Idle",
            ],
        ),
        (
            "an elevator",
            ["robust Elevator=elevator"],
            ["0: Elevator Idle", "10: Elevator MovingUp", "25: Elevator DoorsOpen", "35: Elevator Idle"],
        ),
        (
            "a coffee machine",
            ["robust Machine=coffee machine", "concise Cup=cup"],
            [
                "0: Machine Ready, Cup Empty",
                "5: Machine Grinding",
                "15: Machine Brewing",
                "45: Machine Ready, Cup Full",
            ],
        ),
        (
            "a battery charger",
            ["robust Charger=charger", "concise Battery=battery"],
            ["0: Charger Off, Battery Low", "10: Charger Charging", "70: Battery Full, Charger Off"],
        ),
        (
            "a login session",
            ["concise Session=session"],
            [
                "0: Session LoggedOut",
                "10: Session LoggedIn",
                "40: Session Locked",
                "50: Session LoggedIn",
                "80: Session LoggedOut",
            ],
        ),
        (
            "a pedestrian crossing",
            ["robust Signal=walk signal", "concise Walker=walker"],
            ["0: Signal Stop, Walker Waiting", "20: Signal Walk, Walker Crossing", "35: Signal Stop, Walker Done"],
        ),
        (
            "a microwave",
            ["robust Oven=microwave"],
            ["0: Oven Idle", "3: Oven Heating", "63: Oven Beeping", "66: Oven Idle"],
        ),
        (
            "a sprinkler system",
            ["robust Valve=valve", "concise Lawn=lawn"],
            ["0: Valve Closed, Lawn Dry", "6: Valve Open", "26: Valve Closed, Lawn Wet"],
        ),
        (
            "a video stream",
            ["concise Player=player", "concise Network=network"],
            [
                "0: Player Loading, Network Fast",
                "4: Player Playing",
                "30: Network Slow, Player Buffering",
                "36: Network Fast, Player Playing",
            ],
        ),
        (
            "a street lamp",
            ["robust Lamp=street lamp", "concise Sky=sky"],
            ["0: Lamp Off, Sky Day", "18: Sky Dusk, Lamp Dim", "20: Sky Night, Lamp On", "30: Sky Day, Lamp Off"],
        ),
        (
            "a build job",
            ["concise Job=build job"],
            ["0: Job Queued", "3: Job Compiling", "12: Job Testing", "20: Job Done"],
        ),
        (
            "a parking barrier",
            ["robust Barrier=barrier", "concise Car=car"],
            ["0: Barrier Down, Car Arriving", "4: Barrier Up, Car Passing", "9: Barrier Down, Car Parked"],
        ),
        (
            "a garage door opener",
            ["robust Door=garage door", "concise Remote=remote"],
            ["0: Door Closed, Remote Idle", "5: Remote Pressed, Door Opening", "20: Door Open, Remote Idle"],
        ),
        (
            "a fire alarm",
            ["robust Smoke=smoke level", "concise Alarm=alarm"],
            ["0: Smoke Low, Alarm Silent", "15: Smoke High, Alarm Ringing", "45: Smoke Low, Alarm Silent"],
        ),
        (
            "a network upload",
            ["concise Client=client", "robust Link=link"],
            ["0: Client Idle, Link Idle", "3: Client Uploading, Link Busy", "25: Client Idle, Link Idle"],
        ),
        (
            "a school bell",
            ["robust Bell=bell", "concise Class=class"],
            ["0: Bell Silent, Class Lesson", "45: Bell Ringing, Class Break", "50: Bell Silent", "60: Class Lesson"],
        ),
    ],
}

HELDOUT: dict[str, list[Any]] = {
    "sequence": [
        (
            "renting a scooter",
            ["Rider*", "ScooterApp", "Scooter"],
            [
                "Rider > ScooterApp: scan scooter",
                "ScooterApp > Scooter: unlock",
                "Scooter >> ScooterApp: unlocked",
                "ScooterApp >> Rider: ride started",
            ],
        ),
        (
            "a museum ticket purchase",
            ["Visitor*", "TicketKiosk", "CardReader"],
            [
                "Visitor > TicketKiosk: buy adult ticket",
                "TicketKiosk > CardReader: charge 15 euros",
                "CardReader >> TicketKiosk: paid",
                "TicketKiosk >> Visitor: ticket",
            ],
        ),
        (
            "a pharmacy prescription",
            ["Patient*", "Pharmacist", "PrescriptionSystem"],
            [
                "Patient > Pharmacist: hand in prescription",
                "Pharmacist > PrescriptionSystem: validate prescription",
                "PrescriptionSystem >> Pharmacist: valid",
                "Pharmacist >> Patient: medicine",
            ],
        ),
        (
            "a voice assistant timer",
            ["User*", "Speaker", "AssistantCloud"],
            [
                "User > Speaker: set a timer",
                "Speaker > AssistantCloud: parse request",
                "AssistantCloud >> Speaker: timer 10 minutes",
                "Speaker >> User: timer started",
            ],
        ),
    ],
    "class": [
        (
            "a zoo ticket office",
            ["TicketOffice: location String; sell", "Ticket: price float, date Date", "ChildTicket: age int"],
            ["TicketOffice o-- Ticket", "Ticket <|-- ChildTicket"],
        ),
        (
            "a spaceship",
            ["Spaceship: name String; launch", "Thruster: force int", "Astronaut: name String, rank String"],
            ["Spaceship *-- Thruster", "Astronaut --> Spaceship: flies"],
        ),
        (
            "musical instruments",
            ["Instrument: name String; play", "Guitar: strings int", "Drum: diameter float", "Band: name String"],
            ["Instrument <|-- Guitar", "Instrument <|-- Drum", "Band o-- Instrument"],
        ),
    ],
    "usecase": [
        (
            "Pet Clinic",
            {"PetOwner": ["book visit", "view pet records"], "Vet": ["treat pet", "write report"]},
            ["book visit > choose time slot"],
        ),
        ("Bike Sharing", {"Cyclist": ["unlock bike", "end ride", "report damage"], "Mechanic": ["repair bike"]}, []),
        (
            "Museum Guide App",
            {"Visitor": ["scan exhibit", "listen to audio guide", "buy souvenir"], "Curator": ["add exhibit"]},
            [],
        ),
    ],
    "activity": [
        ("feeding a pet", ["fill bowl with food", "?pet is hungry|call the pet|put bowl away", "refill water"]),
        (
            "charging an electric car",
            ["park at charger", "plug in cable", "*battery not full|keep charging", "unplug cable"],
        ),
        (
            "submitting homework",
            ["finish homework", "upload file", "?upload succeeded|show confirmation|retry upload", "log out"],
        ),
    ],
    "state": [
        (
            "a garage door",
            "Closed",
            [
                "Closed > Opening: press remote",
                "Opening > Open: fully open",
                "Open > Closing: press remote",
                "Closing > Closed: fully closed",
            ],
        ),
        (
            "a seat reservation",
            "Available",
            [
                "Available > Held: select seat",
                "Held > Sold: pay",
                "Held > Available: hold expires",
                "Sold > end: event over",
            ],
        ),
        (
            "a drone",
            "Landed",
            [
                "Landed > Flying: take off",
                "Flying > Hovering: stop",
                "Hovering > Flying: move",
                "Flying > Landed: land",
            ],
        ),
    ],
    "component": [
        (
            "a translation service",
            ["TranslatorUi", "TranslateApi", "LanguageModel", "db:Glossary"],
            [
                "TranslatorUi > TranslateApi: REST",
                "TranslateApi > LanguageModel: translate",
                "TranslateApi > Glossary: lookup",
            ],
        ),
        (
            "a fitness tracker",
            ["Watch", "SyncService", "queue:ActivityQueue", "db:ActivityDB"],
            [
                "Watch > SyncService: Bluetooth",
                "SyncService > ActivityQueue: publish",
                "SyncService > ActivityDB: save",
            ],
        ),
        (
            "a museum website",
            ["MuseumSite", "ExhibitService", "TicketService", "db:CollectionDB"],
            [
                "MuseumSite > ExhibitService: REST",
                "MuseumSite > TicketService: REST",
                "ExhibitService > CollectionDB: SQL",
            ],
        ),
    ],
    "deployment": [
        (
            "a radio station stream",
            ["actor:Listener", "cloud:StreamCDN", "node:StudioServer(artifact:Encoder)"],
            ["Listener > StreamCDN: HTTPS", "Encoder > StreamCDN: RTMP"],
        ),
        (
            "a farm sensor network",
            ["node:FieldSensor", "node:FarmGateway(artifact:Collector)", "cloud:FarmCloud", "actor:Farmer"],
            ["FieldSensor > FarmGateway: LoRa", "Collector > FarmCloud: HTTPS", "Farmer > FarmCloud: HTTPS"],
        ),
        (
            "a museum audio guide",
            ["actor:Visitor", "node:GuideDevice(artifact:GuideApp)", "node:MuseumServer(database:AudioFiles)"],
            ["Visitor > GuideDevice", "GuideApp > AudioFiles: WiFi"],
        ),
    ],
    "object": [
        ("a pet and its owner", ['rex: species="dog", age=3', 'nora: name="Nora"'], ["nora > rex: owns"]),
        (
            "a train journey",
            ['train812: from="Paris", to="Lyon"', "coach5: seats=80", "ticket31: seat=42"],
            ["train812 > coach5: has", "ticket31 > coach5: in"],
        ),
        (
            "a concert",
            ['concert1: city="Oslo", date="2026-06-12"', "bandAurora: members=4"],
            ["concert1 > bandAurora: features"],
        ),
    ],
    "er": [
        (
            "a pet clinic",
            ["Owner: name varchar, phone varchar", "Pet: name varchar, species varchar", "Visit: day date"],
            ["Owner 1-n Pet: owns", "Pet 1-n Visit: has"],
        ),
        (
            "a bike sharing system",
            ["Station: name varchar, docks int", "Bike: serial varchar", "Ride: minutes int"],
            ["Station 1-n Bike: docks", "Bike 1-n Ride: used for"],
        ),
        (
            "a podcast platform",
            ["Show: title varchar", "Episode: title varchar, minutes int", "Listener: name varchar"],
            ["Show 1-n Episode: publishes", "Listener n-n Show: follows"],
        ),
    ],
    "gantt": [
        (
            "a bathroom remodel",
            "2026-04-20",
            [
                "Design bathroom: 3",
                "Tile walls: 4 after Design bathroom",
                "Install shower: 2 after Tile walls",
                "!Bathroom done after Install shower",
            ],
        ),
        (
            "a science fair project",
            "2026-02-23",
            ["Choose topic: 2", "Run experiment: 6 after Choose topic", "Make poster: 3 after Run experiment"],
        ),
        (
            "a podcast season",
            "2026-09-21",
            [
                "Plan episodes: 4",
                "Record episodes: 10 after Plan episodes",
                "Edit audio: 6 after Record episodes",
                "!Season premiere after Edit audio",
            ],
        ),
    ],
    "mindmap": [
        "Pet care: Food(Dry food, Treats); Health(Vet visits, Vaccines); Play",
        "Learning guitar: Chords(Major, Minor); Practice(Daily, Songs); Gear",
        "City tour: Museums(Art, History); Food(Markets, Cafes); Parks",
    ],
    "wbs": [
        "Podcast season: Planning(Topics, Guests); Recording; Publishing(Editing, Upload)",
        "Museum exhibition: Curation(Objects, Texts); Build(Walls, Lighting); Opening",
        "Bike lane project: Survey(Traffic count); Construction(Paint, Barriers); Review",
    ],
    "timing": [
        (
            "a bread toaster",
            ["robust Toaster=toaster", "concise Bread=bread"],
            ["0: Toaster Idle, Bread Raw", "2: Toaster Toasting", "120: Toaster Idle, Bread Toasted"],
        ),
        (
            "a railway crossing",
            ["robust Gate=crossing gate", "concise Train=train"],
            [
                "0: Gate Up, Train Away",
                "10: Gate Down, Train Approaching",
                "20: Train Passing",
                "30: Gate Up, Train Away",
            ],
        ),
        (
            "a dishwasher",
            ["robust Dishwasher=dishwasher"],
            ["0: Dishwasher Off", "2: Dishwasher Washing", "50: Dishwasher Drying", "80: Dishwasher Off"],
        ),
    ],
}
