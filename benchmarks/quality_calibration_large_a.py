"""Part of quality_calibration_large.py's texts (its ``parse`` reads the block): greetings,
short exclamations, questions, home, food, shopping, family and friends."""

TEXTS = """
# greetings and farewells
Hi, how are you?
Hey, nice to meet you.
Good evening, everyone.
Good night, sleep well.
Sweet dreams!
See you later!
Bye for now.
Goodbye, and take care.
Take care of yourself.
Welcome to the team!
Welcome home, we missed you.
Happy birthday, Anna, and many happy returns.
Happy new year!
Merry Christmas to you and your family.
Happy anniversary, you two!
Congratulations!
Congratulations on the new baby!
Congratulations on passing your driving test.
Well done!
Good job, everyone.
Cheers to that!
Bless you!
Get well soon.
I hope you feel better soon.
Good luck with the exam!
Best of luck tomorrow.
Break a leg!
Enjoy your meal.
Enjoy the film!
Have fun at the party!
Have a nice weekend.
Have a lovely evening.
Hope you had a good day.
How have you been?
What's up?
How's it going?
Nice to see you again.
Pleased to meet you.
It was lovely to meet you.
Greetings from Lisbon!
Hello from the other side of the world.
Hi Mum, I arrived safely.
Dear Sir or Madam,
Kind regards,
Yours sincerely,
Best wishes,
All the best!
Love, Grandma.
Talk soon.
Catch you later.
Until next time!
Farewell, old friend.
Rest in peace.
My condolences.
I'm sorry for your loss.
Sorry!
Sorry, my mistake.
Excuse me.
Excuse me, is this seat taken?
Pardon?
Sorry, could you say that again?
No problem at all.
You're welcome.
Don't mention it.
My pleasure.
Not at all.
Much appreciated.
I owe you one.
That's very kind of you.
Please.
Yes, please.
Of course!
Sure thing.
Absolutely.
Definitely not.
Maybe later.
Why not?
Fair enough.
Deal!
Agreed.
Okay.
All right, let's go.
Ready when you are.
After you.
Hold on a second.
Just a moment, please.
Wait for me!
Hurry up!
Slow down!
Be careful!
Look out, a car!
Stop!
Help!
Fire!
Run!
Come here.
Go away!
Leave me alone.
Shh, the baby is sleeping.
Quiet, please.
# short exclamations and reactions
Wow!
Oh no!
Oops!
Yay!
Ouch, that hurt.
Hooray, we won!
Finally!
At last, the weekend!
Great news!
How exciting!
How lovely!
How awful.
What a shame.
What a mess!
What a surprise!
What a day!
What a relief!
What a game!
What a lovely dress!
That's amazing!
That's brilliant!
That's terrible.
That's so funny.
That's not fair!
That's enough!
Unbelievable!
Incredible!
No way!
You're kidding!
Are you serious?
I don't believe it!
Oh my goodness.
Good heavens!
Thank goodness you're here.
Phew, that was close.
Never again!
Not again!
Here we go again.
Too late!
Just in time!
So cute!
So delicious!
Delicious!
Yummy!
Gross!
Disgusting!
Lovely weather today!
Brr, it's freezing!
It's boiling in here!
I love it!
I hate Mondays.
I'm starving!
I'm bored.
I'm lost.
I'm so proud of you!
I'm so happy for you.
I'm so sorry.
I'm late!
I'm on my way.
I'm home!
I did it!
We made it!
You did it!
You look great!
You're the best!
Nice try.
Good point.
Good question.
Good idea!
Bad idea.
Not bad at all.
Beautiful!
Perfect!
Exactly!
Of course not!
Never mind.
Whatever.
Who cares?
So what?
Bring it on!
Let's do this!
Let's go home.
Let's celebrate!
Time for bed.
Time's up!
Game over.
Happy holidays!
Season's greetings.
Trick or treat!
Surprise!
Smile!
Say cheese!
# questions
What time does the shop close?
How much does this cost?
Can I pay by card?
Do you have this in a smaller size?
Is breakfast included?
Could you help me with my bag?
Where can I buy a ticket?
How long does the journey take?
When does the next ferry sail?
Is there a bank near here?
Can you recommend a good restaurant?
Do you speak English?
What does this word mean?
How do you spell your name?
What is your phone number?
Where do you live?
How old are you?
Do you have any brothers or sisters?
What do you do for a living?
What are your hobbies?
Have you ever been to Canada?
What's the weather like today?
Will it snow this weekend?
What's for dinner?
Can I have another piece of cake?
Are you hungry?
Would you like a cup of tea?
How do you take your coffee?
Shall we go for a walk?
Do you want to come to the cinema with us?
Are you free on Saturday?
What time shall we meet?
Where are we meeting?
Who is coming to the party?
Whose jacket is this?
What happened?
What's wrong?
Are you all right?
Is everything okay?
Did you sleep well?
Why are you laughing?
Why is the baby crying?
Why did the lights go out?
How did you find out?
How does this machine work?
How can I reset the router?
How do I turn this off?
Where did I put my glasses?
Have you seen my phone?
Who left the window open?
Who ate the last biscuit?
What's the capital of Australia?
How many legs does a spider have?
How deep is the ocean?
How far away is the sun?
Why do cats purr?
Why do leaves change colour in autumn?
Why do we dream?
What makes a rainbow?
How do birds know where to fly in winter?
How are bubbles made?
Can fish feel pain?
Do plants need soil to grow?
Is it safe to drink tap water here?
Should I bring an umbrella?
Can I park here?
Is this the right way to the station?
Does this bus stop at the hospital?
How often do the trams run?
Can I bring my dog on the train?
What is the password for the wifi?
Can you send me the file again?
Did you get my message?
When is the deadline?
Who is in charge of the project?
What should I wear to the interview?
How much annual leave do I have left?
Can I work from home tomorrow?
Is the meeting still on?
Why is the printer not working again?
Which version of Python do you use?
What does this error message mean?
How do I undo the last commit?
Is there a faster way to do this?
What is the difference between a virus and a bacterium?
How long should I boil an egg?
How many calories are in an apple?
Is coffee bad for your heart?
How much sleep does a teenager need?
Where can I recycle old batteries?
How do I get a library card?
When was the castle built?
Who painted this picture?
Who won the match last night?
What was the final score?
Which team do you support?
Can you play the piano?
Do you like jazz?
Have you read the book?
Is the film worth seeing?
Where shall we go on holiday?
Should we take the car or the train?
How much luggage can I take?
Do I need a visa?
Can I change my booking?
Is there a discount for students?
Are children allowed?
Is the museum free?
Could you take a photo of us?
May I come in?
May I ask you a question?
Can I borrow your pen?
Would you mind waiting outside?
Could you turn the music down?
Are we there yet?
Is it far?
Is it true?
Are you sure?
Really?
What now?
What for?
How come?
Who knows?
Anyone home?
Anybody want some popcorn?
Coffee or tea?
Left or right?
Ready?
Done?
# home
The boiler needs servicing before the winter.
We keep the spare key under a flowerpot.
The light in the hallway has stopped working.
Our front door sticks when it rains.
I spent the whole Saturday cleaning the windows.
The baby's room is painted yellow.
Someone has to take the rubbish out tonight.
The bathroom mirror steams up after every shower.
We bought a second-hand sofa online.
The stairs creak when you walk on them at night.
The basement floods whenever there is heavy rain.
Our new neighbours introduced themselves yesterday.
The roof tiles came loose in the wind.
He hung the picture slightly crooked.
The kitchen drawer is full of old batteries and string.
Please take your shoes off at the door.
The radiator in the bedroom is stone cold.
We are renting a small house by the canal.
The landlady lives on the ground floor.
She rearranges the living room furniture every spring.
The lawn needs mowing again.
The plants on the balcony need watering every day in summer.
I fixed the wobbly table leg with a piece of cardboard.
The garage is so full that the car no longer fits.
The doorbell does not work, so please knock.
We replaced all the bulbs with energy-saving ones.
The kettle is covered in limescale.
The toaster burns one side of the bread.
My flatmate never washes his dishes.
Let's split the cleaning between the four of us.
Whose turn is it to cook tonight?
The house smells of fresh paint.
The wallpaper is peeling in the corner.
A pipe burst under the kitchen sink.
The plumber is coming on Tuesday morning.
The electrician rewired the whole flat.
We moved in three weeks ago and still have boxes everywhere.
Our street is very quiet at night.
The walls are so thin that we hear the neighbours talking.
The attic is full of old toys and photographs.
I keep my bicycle in the hallway.
The window cleaner comes once a month.
We put up the Christmas tree on the first of December.
The dog sleeps at the foot of our bed.
The goldfish has lived for eleven years.
The cat brings dead mice into the kitchen.
Feed the rabbit twice a day.
Our parrot can say a few words.
The hamster escaped from its cage last night.
# food and drink
The soup needs a little more pepper.
I'd like my steak medium rare.
Could we have the bill, please?
The chef uses only local vegetables.
A spoonful of sugar makes the sauce less sour.
Grate the cheese over the pasta just before serving.
Fry the mushrooms until they release their water.
Toast the almonds in a dry pan.
Marinate the chicken overnight in yoghurt and spices.
Stir the risotto constantly so it does not stick.
Cover the pot and leave it on a low heat.
Melt the chocolate over a bowl of hot water.
Knead the dough for ten minutes until it is elastic.
Preheat the oven to one hundred and eighty degrees.
Let the cake cool before you ice it.
The bread has gone mouldy.
The milk smells sour.
These bananas are too ripe to eat.
The strawberries are sweet this year.
We picked blackberries along the path.
He drinks three cups of coffee before noon.
She prefers green tea without sugar.
Fresh orange juice, please.
A glass of red wine goes well with this cheese.
The beer is served ice cold.
Sparkling wine is traditional at weddings.
Breakfast is served from seven to ten.
I usually skip breakfast.
We had a picnic by the lake.
The barbecue was ruined by the rain.
He is allergic to peanuts.
She has been vegan for five years.
This bread contains gluten.
The menu has several dishes without meat.
The portions here are enormous.
The pizza arrived cold.
The sushi was very fresh.
Tacos are on the menu every Tuesday.
The dumplings are filled with pork and cabbage.
Porridge keeps me full until lunch.
Pancakes with maple syrup are my favourite breakfast.
Add the eggs one at a time and beat well.
Season the fish with salt and lemon.
Serve the salad with a mustard dressing.
The omelette was light and fluffy.
These cookies are crunchy on the outside and soft inside.
The apple pie was still warm from the oven.
The ice cream melted before we could eat it.
Chili peppers get their heat from capsaicin.
Saffron is the most expensive spice by weight.
Olive oil should be kept away from light.
Cinnamon comes from the bark of a tree.
Sourdough bread rises slowly with wild yeast.
Yoghurt is made by fermenting milk with bacteria.
Tofu is made from soy milk.
Pasta should be cooked until it is just firm to the bite.
Rice triples in volume when it cooks.
Potatoes were brought to Europe from South America.
Tomatoes are technically a fruit.
Wild mushrooms can be poisonous.
The recipe serves four people.
Double the quantities for a larger group.
The sauce thickens as it cools.
The restaurant has a long waiting list.
Tipping is not expected in this country.
The food truck sells falafel wraps.
Street food is cheap and delicious here.
The coffee machine at work makes terrible coffee.
He spilled tomato sauce on his white shirt.
Don't eat the raw dough.
Keep raw meat separate from vegetables.
Leftovers can be frozen for up to three months.
Defrost the chicken in the fridge, not on the counter.
# shopping
The shoes were half price in the sale.
I returned the jacket because it was too tight.
The shop assistant helped me find a dress.
The queue at the checkout was very long.
The store accepts returns within thirty days.
The supermarket has started charging for plastic bags.
He always shops with a list.
She buys her vegetables at the Saturday market.
The mall is packed on weekends.
The bookshop closed after forty years.
The pharmacy is on the corner of the high street.
This brand is cheaper online.
The price tag was missing.
The cashier gave me the wrong change.
I paid with my phone.
Sorry, we are out of stock.
These jeans come in three colours.
The fitting rooms are at the back of the shop.
We bought a new fridge with a five-year warranty.
The delivery driver left the box in the rain.
The parcel arrived damaged.
I ordered a blue lamp and received a green one.
The furniture came flat-packed with missing screws.
The antique shop sells old clocks and maps.
The florist made a beautiful bouquet.
Buy one, get one free.
The butcher cut the meat into thin slices.
He compares prices before buying anything.
She spent all her pocket money on sweets.
The toy shop window is full of teddy bears.
Gift cards can be used in any branch.
The garden centre sells plants and tools.
# family and friends
My brother is three years older than me.
Our daughter started school this year.
The twins look exactly alike.
My parents have been married for forty years.
Grandma knits socks for the whole family.
My uncle lives on a farm in the north.
Our cousins are visiting for Easter.
She is expecting her first child in May.
The baby took her first steps yesterday.
He reads his son a story every night.
The kids fought over the remote control.
Our teenager sleeps until noon on Sundays.
My aunt sends postcards from everywhere she travels.
The whole family gathered for the wedding.
They adopted a little boy last year.
My best friend moved abroad.
We have been friends since primary school.
They met at a concert ten years ago.
He proposed on top of a mountain.
She introduced me to her parents.
They got divorced after a long marriage.
Our neighbour looks after the children when we work late.
We call my grandfather every Sunday.
My sister and I share a bedroom.
He is the youngest of five children.
My mother taught me how to sew.
Dad snores so loudly that nobody can sleep.
The children are allowed one hour of screen time a day.
She babysits for the family next door.
They celebrate every birthday with a big meal.
""".strip()
